"""`vode bench train`: one training recipe's step, timed with each way of computing the photometric
loss's SSIM, round-robin in one run.

The candidates share the method, the optimiser and the same pre-loaded batches; only SSIM's 3x3
window means change: ``AvgPool2d`` (monodepth2's formulation, the baseline) or the shifted-slice
sums of ``vode_training.losses.photometric.box_mean3`` (what training uses). Each round times
every candidate for ``steps`` steps after one warm-up step, so load that comes and goes hits them
alike; the ratio is the baseline's median seconds per step over the candidate's.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = REPO / "config" / "train" / "driving.yaml"


def pooled_ssim():
    """SSIM with AvgPool2d(3, 1) window means (monodepth2's layers): the baseline."""
    import torch.nn as nn

    from vode_training.losses.photometric import SSIM

    return SSIM(window_mean=nn.AvgPool2d(3, 1))


@contextmanager
def ssim_in_use(impl):
    """Train with `impl` as the photometric loss's SSIM inside the block."""
    from vode_training.losses import photometric

    saved, photometric._SSIM = photometric._SSIM, impl
    try:
        yield
    finally:
        photometric._SSIM = saved


def bench_train_step(config: Path = DEFAULT_CONFIG, data: Path | None = None, threads: int = 2, steps: int = 5,
                     rounds: int = 3, batch: int | None = None, size: tuple[int, int] | None = None,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """-> {"config", "method", "threads", "batch", "size", "rows": [{name, s_per_step (median), all, ratio}]}.
    data: one KITTI-layout folder to train on (default: the recipe's own data); size (w, h) overrides the
    recipe's."""
    import torch

    from vode_training.config import load_config
    from vode_training.data import build_dataset
    from vode_training.losses.photometric import SSIM
    from vode_training.methods import build_method

    torch.set_num_threads(threads)
    overrides = [f"data.path={data}", "data.paths=[]", "data.root="] if data is not None else []
    if batch:
        overrides.append(f"train.batch_size={batch}")
    if size:
        overrides += [f"data.width={size[0]}", f"data.height={size[1]}"]
    cfg = load_config(config, overrides)
    dataset = build_dataset(cfg)
    channels = 3 if cfg["data"]["color"] == "rgb" else 1
    method = build_method(cfg, channels)
    optimiser = torch.optim.Adam(method.parameters(), lr=float(cfg["train"]["lr"]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=int(cfg["train"]["batch_size"]), shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    batches = []
    for b in loader:
        batches.append(b)
        if len(batches) == steps + 1:
            break
    if len(batches) < steps + 1:
        raise RuntimeError(f"{len(dataset)} training items make {len(batches)} batches; need {steps + 1}")

    def step(b) -> None:
        loss, _, _ = method.compute_loss(b)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    candidates = [("SSIM by AvgPool2d (monodepth2, baseline)", pooled_ssim()), ("SSIM by shifted slices (used)", SSIM())]
    times: dict[str, list[float]] = {name: [] for name, _ in candidates}
    for r in range(rounds):
        for name, impl in candidates:
            with ssim_in_use(impl):
                step(batches[0])                      # warm-up: allocator, first-call paths
                t0 = time.perf_counter()
                for b in batches[1:]:
                    step(b)
                times[name].append((time.perf_counter() - t0) / steps)
        log(f"round {r + 1}/{rounds}: " + ", ".join(f"{n.split(' (')[0]} {v[-1]:.3f} s" for n, v in times.items()))
    base = statistics.median(times[candidates[0][0]])
    rows = [{"name": n, "s_per_step": statistics.median(v), "all": v, "ratio": base / statistics.median(v)}
            for n, v in times.items()]
    d = cfg["data"]
    shown = Path(config).resolve()
    shown = shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown
    return {"config": str(shown), "method": cfg["method"], "threads": threads, "batch": int(cfg["train"]["batch_size"]),
            "size": [int(d["width"]), int(d["height"])], "steps_per_round": steps, "rounds": rounds, "rows": rows}


def format_train_step(report: dict[str, Any]) -> str:
    lines = [f"training step of {report['config']} ({report['method']}, batch {report['batch']}, "
             f"{report['size'][0]}x{report['size'][1]}, {report['threads']} threads; median of {report['rounds']} "
             f"rounds x {report['steps_per_round']} steps)", "", "| photometric SSIM | s / step | ratio |", "|---|---|---|"]
    lines += [f"| {r['name']} | {r['s_per_step']:.3f} | {r['ratio']:.2f}x |" for r in report["rows"]]
    return "\n".join(lines)
