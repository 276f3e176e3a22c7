"""Trajectory metrics (numpy only, no torch: the ROS run time imports this too).

Pose conventions follow ``vode_ros.core.geometry``: absolute poses ``W_i`` (4x4) map camera-i
coordinates into the world (frame-0 camera) frame; relative poses ``T_{i-1,i}`` are the
camera-i pose in the camera-(i-1) frame, so ``W_i = W_{i-1} @ T_{i-1,i}``.

- :func:`umeyama_alignment`: least-squares Sim(3)/SE(3) fit ``dst ≈ s R src + t``.
- :func:`ate_rmse`: absolute trajectory error of positions after an alignment.
- :func:`ate5`: SfMLearner's 5-frame snippet ATE (reproduced exactly from its evaluation
  code, see docs/methods.md): per snippet, positions relative to the snippet's first
  frame, one least-squares scale ``s = Σ gt·p / Σ p²``, error ``sqrt(Σ‖s p − gt‖²) / N``
  (divided by N, not √N); mean ± (population) std over all snippets.
- :func:`ground_truth_rotations`: rotation blocks of a ground truth read from text, projected
  onto SO(3) where they are only nearly orthonormal (real sources give them to ~1e-4), refused
  with the file and line where they are not rotations at all.
"""
from __future__ import annotations

import logging

import numpy as np

# Deviation max|RᵀR - I| (and |det R - 1|) below which a rotation is taken as it is: evo's own
# tolerance, so everything that passes here passes evo. Between this and SO3_MAX_DEVIATION the
# block is a rotation written with few digits or re-orthonormalised by nobody (7-Scenes: ~3e-4)
# and is replaced by the nearest rotation; beyond it the line is broken (a typo, a column shift,
# a scaled matrix), and no projection would say what was meant.
SO3_EXACT_TOLERANCE = 1e-6
SO3_MAX_DEVIATION = 1e-2

_log = logging.getLogger("vode_ros.ground_truth")
_reported: set[str] = set()         # sources already said to be projected (said once per source)


def _positions(x: np.ndarray) -> np.ndarray:
    """(N, 4, 4) or (N, 3, 4) poses, or (N, 3) positions -> (N, 3) float64 positions."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[1:] in ((4, 4), (3, 4)):
        return x[:, :3, 3].copy()
    if x.ndim == 2 and x.shape[1] == 3:
        return x.copy()
    raise ValueError(f"expected (N, 4, 4) poses or (N, 3) positions, got {x.shape}")


def umeyama_alignment(src: np.ndarray, dst: np.ndarray, with_scale: bool = True
                      ) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama 1991) with ``dst_i ≈ s R src_i + t``.

    src, dst: (N, 3). Returns ``(s, R (3, 3), t (3,))``; ``s = 1`` when ``with_scale`` is
    False (SE(3) fit). Needs N >= 3 non-collinear points for a unique rotation (N >= 2 gives
    some valid minimiser).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f"src and dst must both be (N, 3), got {src.shape} and {dst.shape}")
    n = src.shape[0]
    if n < 2:
        raise ValueError("umeyama_alignment needs at least 2 points")
    mu_s = src.mean(axis=0)
    mu_d = dst.mean(axis=0)
    xs = src - mu_s
    xd = dst - mu_d
    var_s = float(np.sum(xs**2) / n)
    cov = xd.T @ xs / n
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rot = u @ sign @ vt
    if with_scale:
        if var_s == 0:
            raise ValueError("umeyama_alignment: source points are all equal, scale undefined")
        scale = float(np.trace(np.diag(d) @ sign) / var_s)
    else:
        scale = 1.0
    trans = mu_d - scale * rot @ mu_s
    return scale, rot, trans


def align_positions(est: np.ndarray, gt: np.ndarray, align: str = "sim3"
                    ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Align estimated positions to ground truth -> (aligned (N, 3), s, R, t).

    align: ``'sim3'`` (7-DoF Umeyama), ``'se3'`` (6-DoF, no scale), ``'scale'`` (one
    least-squares scale about the origin, ``s = Σ gt·p / Σ p²``, no rotation/translation: for
    trajectories that already share the first frame as origin) or ``'none'``.
    """
    p = _positions(est)
    g = _positions(gt)
    if p.shape != g.shape:
        raise ValueError(f"estimate and ground truth differ in length: {p.shape} vs {g.shape}")
    rot, trans, scale = np.eye(3), np.zeros(3), 1.0
    if align == "sim3":
        scale, rot, trans = umeyama_alignment(p, g, with_scale=True)
    elif align == "se3":
        scale, rot, trans = umeyama_alignment(p, g, with_scale=False)
    elif align == "scale":
        denom = float(np.sum(p**2))
        scale = float(np.sum(g * p) / denom) if denom > 0 else 1.0
    elif align != "none":
        raise ValueError(f"align must be 'sim3', 'se3', 'scale' or 'none', not {align!r}")
    aligned = scale * p @ rot.T + trans
    return aligned, scale, rot, trans


def ate_rmse(est_positions: np.ndarray, gt_positions: np.ndarray, align: str = "sim3") -> dict:
    """Absolute trajectory error of positions (metres) after ``align`` (see align_positions).

    Inputs are (N, 3) positions or (N, 4, 4) poses. Returns ``rmse``, ``mean``, ``median``,
    ``max`` of the per-frame position errors, the ``scale`` applied and ``n``.
    """
    aligned, scale, _, _ = align_positions(est_positions, gt_positions, align)
    err = np.linalg.norm(aligned - _positions(gt_positions), axis=1)
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mean": float(err.mean()),
        "median": float(np.median(err)),
        "max": float(err.max()),
        "scale": float(scale),
        "n": int(err.size),
    }


def snippet_ate(est_snippet: np.ndarray, gt_snippet: np.ndarray) -> float:
    """SfMLearner's compute_ate for one snippet of absolute poses (n, 4, 4) each.

    Both are re-expressed relative to the snippet's first frame (``inv(W_0) @ W_j``), the
    first positions are made to coincide (a no-op after that, kept as in the reference), one
    scale ``s = Σ gt·p / Σ p²`` is fitted, and the error is ``sqrt(Σ‖s p − gt‖²) / n``.
    """
    est = np.asarray(est_snippet, dtype=np.float64)
    gt = np.asarray(gt_snippet, dtype=np.float64)
    if est.shape != gt.shape or est.ndim != 3 or est.shape[1:] != (4, 4):
        raise ValueError(f"snippets must both be (n, 4, 4), got {est.shape} and {gt.shape}")
    p = (np.linalg.inv(est[0]) @ est)[:, :3, 3]
    g = (np.linalg.inv(gt[0]) @ gt)[:, :3, 3]
    p = p + (g[0] - p[0])[None, :]
    denom = float(np.sum(p**2))
    scale = float(np.sum(g * p) / denom) if denom > 0 else 0.0
    return float(np.sqrt(np.sum((scale * p - g) ** 2)) / len(p))


def ate5(est_poses: np.ndarray, gt_poses: np.ndarray, snippet_len: int = 5) -> tuple[float, float]:
    """Mean and (population) std of :func:`snippet_ate` over all windows of ``snippet_len``
    consecutive frames starting at every frame (N - snippet_len + 1 snippets).

    est_poses, gt_poses: (N, 4, 4) absolute poses (any common or per-trajectory origin: each
    snippet is re-expressed relative to its own first frame).
    """
    est = np.asarray(est_poses, dtype=np.float64)
    gt = np.asarray(gt_poses, dtype=np.float64)
    if est.shape != gt.shape or est.ndim != 3 or est.shape[1:] != (4, 4):
        raise ValueError(f"poses must both be (N, 4, 4), got {est.shape} and {gt.shape}")
    n = est.shape[0]
    if n < snippet_len:
        raise ValueError(f"need at least {snippet_len} poses, got {n}")
    errs = np.array([snippet_ate(est[i:i + snippet_len], gt[i:i + snippet_len])
                     for i in range(n - snippet_len + 1)])
    return float(errs.mean()), float(errs.std())


def integrate_relative(rel: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
    """Relative poses T_{i-1,i} (N-1, 4, 4) -> absolute poses (N, 4, 4), W_i = W_{i-1} @ T.

    W_0 is ``initial`` (identity by default).
    """
    rel = np.asarray(rel, dtype=np.float64)
    if rel.ndim != 3 or rel.shape[1:] != (4, 4):
        raise ValueError(f"rel must be (N-1, 4, 4), got {rel.shape}")
    out = np.empty((rel.shape[0] + 1, 4, 4))
    out[0] = np.eye(4) if initial is None else np.asarray(initial, dtype=np.float64)
    for i in range(rel.shape[0]):
        out[i + 1] = out[i] @ rel[i]
    return out


def relative_from_absolute(poses: np.ndarray) -> np.ndarray:
    """Absolute poses (N, 4, 4) -> relative T_{i-1,i} = inv(W_{i-1}) @ W_i, (N-1, 4, 4)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"poses must be (N, 4, 4), got {poses.shape}")
    return np.linalg.inv(poses[:-1]) @ poses[1:]


def path_length(poses_or_positions: np.ndarray) -> float:
    """Total travelled distance (sum of consecutive position steps), metres."""
    p = _positions(poses_or_positions)
    if len(p) < 2:
        return 0.0
    return float(np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1)))


def so3_deviation(rotations: np.ndarray) -> np.ndarray:
    """(N, 3, 3) -> (N,) how far each block is from a rotation: max(max|RᵀR - I|, |det R - 1|); inf where not finite."""
    r = np.asarray(rotations, dtype=np.float64)
    finite = np.isfinite(r).all(axis=(1, 2))
    safe = np.where(finite[:, None, None], r, 0.0)
    gram = np.abs(np.transpose(safe, (0, 2, 1)) @ safe - np.eye(3)).max(axis=(1, 2))
    dev = np.maximum(gram, np.abs(np.linalg.det(safe) - 1.0))
    return np.where(finite, dev, np.inf)


def project_to_so3(rotations: np.ndarray) -> np.ndarray:
    """(N, 3, 3) -> (N, 3, 3) the nearest rotations in the Frobenius norm (SVD: U diag(1, 1, det UVᵀ) Vᵀ)."""
    u, _, vt = np.linalg.svd(np.asarray(rotations, dtype=np.float64))
    d = np.ones(u.shape[:2])
    d[:, 2] = np.sign(np.linalg.det(u @ vt))
    return (u * d[:, None, :]) @ vt


def ground_truth_rotations(rotations: np.ndarray, source: str, line_numbers=None) -> np.ndarray:
    """Rotation blocks (N, 3, 3) of a ground truth read from ``source`` -> (N, 3, 3) rotations.

    Blocks within SO3_EXACT_TOLERANCE are kept; those within SO3_MAX_DEVIATION are projected onto
    SO(3) (said once per source on the ``vode_ros.ground_truth`` logger); a worse one raises
    ValueError naming ``source`` and its line (``line_numbers[i]``, 1-based; default i + 1)."""
    r = np.asarray(rotations, dtype=np.float64)
    if r.ndim != 3 or r.shape[1:] != (3, 3):
        raise ValueError(f"rotations must be (N, 3, 3), got {r.shape}")
    lines = np.arange(1, len(r) + 1) if line_numbers is None else np.asarray(line_numbers)
    dev = so3_deviation(r)
    bad = np.flatnonzero(dev > SO3_MAX_DEVIATION)
    if bad.size:
        i = int(bad[0])
        what = ("numbers that are not finite" if not np.isfinite(dev[i])
                else f"a rotation block that is no rotation (max|RᵀR - I|, |det R - 1| = {dev[i]:.2g}, "
                     f"more than {SO3_MAX_DEVIATION:g})")
        more = f" ({bad.size - 1} more such lines)" if bad.size > 1 else ""
        raise ValueError(f"{source}, line {int(lines[i])}: {what}{more}; each line must be a 3x4 row-major "
                         f"pose [R | t] with R a rotation: fix or remove the line")
    if not (dev > SO3_EXACT_TOLERANCE).any():
        return r.copy()
    if source not in _reported:
        _reported.add(source)
        n = int((dev > SO3_EXACT_TOLERANCE).sum())
        _log.warning("%s: %d of %d rotation blocks orthonormal only to %.1g; projected onto SO(3) (nearest "
                     "rotation, SVD)", source, n, len(r), float(dev.max()))
    out = r.copy()
    fix = dev > SO3_EXACT_TOLERANCE
    out[fix] = project_to_so3(r[fix])
    return out
