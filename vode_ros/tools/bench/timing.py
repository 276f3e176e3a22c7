"""Timing: round-robin over all candidates in several rounds, so load that comes and goes hits them
alike; per-candidate statistics in milliseconds."""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    if a.size == 0:
        return {"fps": 0.0, "ms_mean": float("nan"), "ms_p50": float("nan"), "ms_p95": float("nan"), "n": 0}
    return {"fps": float(1000.0 / a.mean()), "ms_mean": float(a.mean()), "ms_p50": float(np.percentile(a, 50)),
            "ms_p95": float(np.percentile(a, 95)), "n": int(a.size)}


def round_robin(cands: dict[str, Callable[[], Any]], seconds: float, rounds: int, warmup: int = 2,
                min_iters: int = 2) -> dict[str, list[float]]:
    """Time each callable for ``seconds`` in total, interleaved in ``rounds`` slices (ms per call)."""
    for fn in cands.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in cands}
    slice_s = seconds / max(1, rounds)
    for _ in range(max(1, rounds)):
        for key, fn in cands.items():
            end = time.perf_counter() + slice_s
            n = 0
            while n < min_iters or time.perf_counter() < end:
                t0 = time.perf_counter()
                fn()
                times[key].append((time.perf_counter() - t0) * 1e3)
                n += 1
    return times


def torch_runner(module, shape):
    import torch

    x = torch.randn(*shape)

    def run():
        with torch.inference_mode():
            module(x)
    return run


def ort_runner(session, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: x})
