"""Figures for evaluation reports.

numpy + matplotlib only (no torch, no pyplot): figures are built on
``matplotlib.figure.Figure`` with the Agg canvas, so no global backend is switched and no
display is needed. PNG files are written atomically (:mod:`vode_ros.core.atomic_file`). The
depth colouring itself is :mod:`vode_ros.core.colormap`.

- :func:`plot_trajectory_topview`: estimate vs. ground truth seen from above.
- :func:`save_depth_panel`: image / prediction / reference stacked, with colour bars.
- :func:`plot_curve`: one per-frame error curve (depth Abs Rel, trajectory error).
- :func:`plot_depth_breakdown`: depth Abs Rel by image band and by ground-truth depth range.
- :func:`plot_compare`: the `vode compare` table as bars.
- :func:`plot_adaptation`: held-out frames before / after an adaptation, beside the reference,
  and the trajectories.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from vode_ros.core.atomic_file import atomic_write


_PLANE_AXES = {"xz": (0, 2), "xy": (0, 1), "yz": (1, 2), "zx": (2, 0), "yx": (1, 0), "zy": (2, 1)}


def _save_atomic(fig, out_png: str | os.PathLike, dpi: int) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_write(out_png, binary=True) as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    return Path(out_png)


def _as_positions(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[1:] in ((4, 4), (3, 4)):
        return x[:, :3, 3]
    if x.ndim == 2 and x.shape[1] == 3:
        return x
    raise ValueError(f"expected (N, 4, 4) poses or (N, 3) positions, got {x.shape}")


def plot_trajectory_topview(est: np.ndarray | None, gt: np.ndarray | None, out_png: str | os.PathLike,
                            title: str = "trajectory (top view)",
                            labels: Sequence[str] = ("estimate", "ground truth"),
                            plane: str = "xz", ate: float | None = None,
                            extra: dict[str, np.ndarray] | None = None,
                            size_px: tuple[int, int] = (800, 800), dpi: int = 100) -> Path:
    """Top view of trajectories -> PNG of ``size_px`` (w, h) pixels; returns the path.

    est, gt: (N, 4, 4) poses or (N, 3) positions (either may be None). ``plane`` names the
    two position axes drawn (horizontal, vertical): ``'xz'`` for camera optical frames (x
    right, z forward), ``'xy'`` for base/odom frames (x forward, y left). Equal axis scale,
    a marker at the start, legend; ``ate`` (metres) is appended to the title when given.
    ``extra`` adds further labelled trajectories.
    """
    from matplotlib.figure import Figure

    if plane not in _PLANE_AXES:
        raise ValueError(f"plane must be one of {sorted(_PLANE_AXES)}, got {plane!r}")
    a, b = _PLANE_AXES[plane]
    fig = Figure(figsize=(size_px[0] / dpi, size_px[1] / dpi), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    series = []
    if gt is not None:
        series.append((labels[1] if len(labels) > 1 else "ground truth", _as_positions(gt), "k", "--"))
    if est is not None:
        series.append((labels[0], _as_positions(est), "tab:red", "-"))
    for i, (name, pos) in enumerate((extra or {}).items()):
        series.append((name, _as_positions(pos), f"C{(i + 2) % 10}", "-"))
    started = False
    for name, pos, colour, style in series:
        if len(pos) == 0:
            continue
        ax.plot(pos[:, a], pos[:, b], linestyle=style, color=colour, linewidth=1.5, label=name)
        ax.plot(pos[-1, a], pos[-1, b], marker="x", color=colour, markersize=7)
        if not started:
            ax.plot(pos[0, a], pos[0, b], marker="o", color="tab:green", markersize=8,
                    linestyle="none", label="start")
            started = True
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(f"{plane[0]} [m]")
    ax.set_ylabel(f"{plane[1]} [m]")
    ax.grid(True, alpha=0.3)
    full_title = title if ate is None else f"{title}  (ATE {ate:.3f} m)"
    ax.set_title(full_title)
    if series:
        ax.legend(loc="best")
    fig.tight_layout()
    return _save_atomic(fig, out_png, dpi)


def save_depth_panel(image: np.ndarray, depth_pred: np.ndarray, depth_ref: np.ndarray | None,
                     out_png: str | os.PathLike, vmin: float | None = None,
                     vmax: float | None = None,
                     titles: Sequence[str] = ("image", "prediction", "reference"),
                     width_px: int = 1000, dpi: int = 100, own_ranges: bool = False) -> Path:
    """Image / predicted depth / reference depth stacked vertically -> PNG; returns the path.

    Depths (metres, 0 = invalid, shown black) are drawn as inverse depth with the 'magma'
    map on one shared scale (``vmin``/``vmax`` in metres; default 5th/95th percentile of the
    valid reference depths, or of the prediction without a reference); the colour bars are
    labelled in metres. ``image`` is (H, W) grey or (H, W, 3) RGB. ``depth_ref`` may be None.
    ``own_ranges``: each depth panel on its own 5th/95th percentile instead, so a prediction far
    off in scale still shows its structure; its title then gives its median depth and, beside a
    reference, how many times the reference's that is (median over the pixels valid in both).
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    image = np.asarray(image)
    panels = [np.asarray(depth_pred, dtype=np.float32)]
    if depth_ref is not None:
        panels.append(np.asarray(depth_ref, dtype=np.float32))
    if vmin is None or vmax is None:
        src = panels[-1]
        good = src[np.isfinite(src) & (src > 0)]
        if good.size == 0:
            src = panels[0]
            good = src[np.isfinite(src) & (src > 0)]
        lo_p, hi_p = np.percentile(good, [5.0, 95.0]) if good.size else (1.0, 80.0)
        vmin = float(lo_p) if vmin is None else vmin
        vmax = float(hi_p) if vmax is None else vmax
    if vmax <= vmin:
        vmax = vmin * 1.01 + 1e-6
    rows = 1 + len(panels)
    aspect = image.shape[0] / image.shape[1]
    fig_w = width_px / dpi
    fig_h = rows * (fig_w * 0.9 * aspect + 0.35) + 0.1
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi, layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    if image.ndim == 2:
        axes[0].imshow(image, cmap="gray", vmin=0, vmax=255 if image.dtype == np.uint8 else None)
    else:
        axes[0].imshow(image)
    axes[0].set_title(titles[0])
    cmap = colormaps["magma"].with_extremes(bad="black")
    im = None
    for n, (ax, depth, name) in enumerate(zip(axes[1:], panels, titles[1:])):
        valid = np.isfinite(depth) & (depth > 0)
        if own_ranges:
            vmin, vmax = own_range(depth)
            name = f"{name}: median {float(np.median(depth[valid])):.3g} m" if valid.any() else f"{name}: no depth"
            if n == 0 and len(panels) > 1 and valid.any():
                ref = panels[1]
                both = valid & np.isfinite(ref) & (ref > 0)
                if both.any():
                    name += f", x{float(np.median(depth[both] / ref[both])):.2f} the reference"
        inv = np.ma.masked_array(np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0), mask=~valid)
        # extent = the image's pixel grid, so a lower-resolution prediction lines up
        im = ax.imshow(inv, cmap=cmap, vmin=1.0 / vmax, vmax=1.0 / vmin, interpolation="nearest",
                       extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5))
        ax.set_title(name)
        cbar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
        cbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{1.0 / v:.3g}" if v > 0 else ""))
        cbar.set_label("depth [m]")
    # same colour-bar slot on the image row, hidden, so all rows have the same width
    fig.colorbar(im, ax=axes[0], fraction=0.03, pad=0.01).ax.set_visible(False)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return _save_atomic(fig, out_png, dpi)


def plot_compare(rows: Sequence[dict], out_png: str | os.PathLike, title: str = "vode compare",
                 dpi: int = 110) -> Path:
    """`vode compare` at a glance, one bar per (method, held-out sequence): depth Abs Rel
    (median-scaled; the constant-depth baseline on the same pixels as a tick, the bar a net has to
    clear) and the pose net's ATE-5. ``rows``: compare.json's ``methods`` (failed ones skipped)."""
    from matplotlib.figure import Figure

    bars = [(r["method"] + (f" / {h['sequence']}" if len(r["heldout"]) > 1 else ""), h)
            for r in rows if "error" not in r for h in r["heldout"]]
    if not bars:
        raise ValueError("no finished method to plot")
    labels = [b[0] for b in bars]
    y = np.arange(len(bars))
    fig = Figure(figsize=(9.0, 0.5 * len(bars) + 2.2))
    ax_d, ax_p = fig.subplots(1, 2, sharey=True)
    ax_d.barh(y, [h["abs_rel"] for _, h in bars], height=0.6, color="tab:blue", label="model (median-scaled)")
    ax_d.scatter([h["constant_abs_rel"] for _, h in bars], y, marker="|", s=400, color="black",
                 label="constant depth (GT median)", zorder=3)
    ax_d.set_xlabel("depth Abs Rel (lower is better)")
    ax_p.barh(y, [h["ate5_mean"] for _, h in bars], xerr=[h["ate5_std"] for _, h in bars], height=0.6,
              color="tab:orange")
    ax_p.set_xlabel("ATE-5 of the pose net, m (lower is better)")
    ax_d.set_yticks(y, labels)
    ax_d.invert_yaxis()
    for ax in (ax_d, ax_p):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.legend(*ax_d.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return _save_atomic(fig, out_png, dpi)


def plot_curve(out_png: str | os.PathLike, x, y, xlabel: str, ylabel: str, title: str) -> Path:
    """One curve, e.g. Abs Rel per frame or trajectory error per frame."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.asarray(x), np.asarray(y, dtype=np.float64), color="tab:red", linewidth=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save_atomic(fig, out_png, dpi=100)


def plot_depth_breakdown(out_png: str | os.PathLike, breakdown: dict, headline: str) -> Path:
    """Two panels (image bands, GT depth ranges) of ``depth_breakdown`` rows: Abs Rel bars, with
    predicted / true depth written on each bar."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    for j, (key, title) in enumerate((("bands", "by image band"), ("ranges", "by ground-truth depth"))):
        ax = fig.add_subplot(1, 2, j + 1)
        rows = breakdown[key]
        x = np.arange(len(rows))
        vals = np.array([r["abs_rel"] for r in rows], dtype=np.float64)
        ax.bar(x, np.nan_to_num(vals), color="tab:red", alpha=0.8)
        for xi, r in zip(x, rows):
            if r["n_pixels"]:
                ax.text(xi, r["abs_rel"], f"x{r['pred_over_true']:.2f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, [r["group"].replace(" (", "\n(") for r in rows], fontsize=8)
        ax.set_ylabel("Abs Rel")
        ax.set_title(f"{title} ({headline.replace('_', '-')}; xN = predicted / true)", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return _save_atomic(fig, out_png, dpi=100)


def own_range(depth: np.ndarray) -> tuple[float, float]:
    """(near, far) metres of one depth map's own 5th / 95th percentile of valid pixels, so a map
    far off in scale still shows its structure (its colour bar says how far off it is)."""
    good = np.asarray(depth, np.float32)
    good = good[np.isfinite(good) & (good > 0)]
    if good.size == 0:
        return 1.0, 80.0
    lo, hi = (float(v) for v in np.percentile(good, [5.0, 95.0]))
    return lo, max(hi, lo * 1.01 + 1e-6)


def _depth_axis(fig, ax, depth: np.ndarray, title: str) -> None:
    """Inverse depth in 'magma' on the map's own range, colour bar in metres; 0 = black."""
    from matplotlib import colormaps
    from matplotlib.ticker import FuncFormatter

    vmin, vmax = own_range(depth)
    valid = np.isfinite(depth) & (depth > 0)
    inv = np.ma.masked_array(np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0), mask=~valid)
    im = ax.imshow(inv, cmap=colormaps["magma"].with_extremes(bad="black"), vmin=1.0 / vmax, vmax=1.0 / vmin,
                   interpolation="nearest", aspect="auto")
    ax.set_title(title, fontsize=8)
    cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.01)
    cbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{1.0 / v:.3g}" if v > 0 else ""))
    cbar.ax.tick_params(labelsize=6)


def plot_adaptation(images: Sequence[np.ndarray], before: Sequence[np.ndarray], after: Sequence[np.ndarray],
                    references: Sequence[np.ndarray | None], out_png: str | os.PathLike, headline: str,
                    trajectories: dict[str, np.ndarray] | None = None, dpi: int = 100) -> Path:
    """One row per held-out frame: image | depth before | depth after | reference (each depth
    panel on its own colour range, titled with its median depth); a last row with the top
    view of the trajectories (ground truth, before, after) where the recording has them."""
    from matplotlib.figure import Figure

    rows = len(images) + (1 if trajectories else 0)
    fig = Figure(figsize=(14, 2.2 * rows + 0.6), dpi=dpi, layout="constrained")
    grid = fig.add_gridspec(rows, 4)
    fig.suptitle(headline, fontsize=9)
    for r, (img, b, a, ref) in enumerate(zip(images, before, after, references)):
        ax = fig.add_subplot(grid[r, 0])
        ax.imshow(img, cmap="gray" if np.asarray(img).ndim == 2 else None, aspect="auto")
        ax.set_title("held-out frame", fontsize=8)
        panels = [(b, "before"), (a, "after")] + ([(ref, "reference")] if ref is not None else [])
        for c, (depth, name) in enumerate(panels, start=1):
            depth = np.asarray(depth, np.float32)
            good = depth[np.isfinite(depth) & (depth > 0)]
            med = f"median {float(np.median(good)):.2f} m" if good.size else "no valid depth"
            _depth_axis(fig, fig.add_subplot(grid[r, c]), depth, f"{name}: {med}")
    if trajectories:
        ax = fig.add_subplot(grid[rows - 1, :2])
        for name, traj in trajectories.items():
            p = _as_positions(traj)
            ax.plot(p[:, 0], p[:, 2], label=name, lw=1.2)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("x [m]")
        ax.set_ylabel("z [m]")
        ax.set_title("held-out trajectory, top view (camera frame of its first frame)", fontsize=8)
        ax.legend(fontsize=7)
    for ax in fig.axes:
        if ax.get_title() and "trajectory" not in ax.get_title():
            ax.set_xticks([])
            ax.set_yticks([])
    return _save_atomic(fig, out_png, dpi)
