"""GPU rows when ONNX Runtime offers CUDA / TensorRT (else the report says they were skipped)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from .config import BenchConfig
from .random_nets import NetSpec
from .sessions import make_session
from .timing import ort_runner


def onnx_input_shape(path: Path) -> tuple[int, ...]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return tuple(int(d) for d in sess.get_inputs()[0].shape)


def gpu_candidates(specs: list[NetSpec], cfg: BenchConfig, work: Path) -> dict[str, Any]:
    import onnxruntime as ort

    avail = ort.get_available_providers()
    gpu_eps = [p for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider") if p in avail]
    if not gpu_eps:
        return {"cands": {}, "info": {"skipped": True,
                                      "line": f"GPU rows skipped: onnxruntime offers {', '.join(avail)} "
                                              "(no CUDA / TensorRT execution provider)"}}
    cands, errors = {}, []
    cache = work / "trt_cache"
    cache.mkdir(exist_ok=True)
    for ep in gpu_eps:
        short = "cuda" if ep.startswith("CUDA") else "tensorrt"
        opts = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)} if short == "tensorrt" else {}
        for s in specs:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")     # "not in available provider names": reported below
                    sess = make_session(s.fp32, cfg.threads, ep, opts)
                if sess.get_providers()[0] != ep:
                    raise RuntimeError(f"fell back to {sess.get_providers()[0]}")
                cands[f"{s.kind}/{s.name}/ort-{short}-fp32"] = (ort_runner(sess, onnx_input_shape(s.fp32)), s,
                                                                f"ort-{short}-fp32")
            except Exception as exc:   # noqa: BLE001
                errors.append(f"{ep} {s.label}: {exc.__class__.__name__}: {exc}")
    return {"cands": cands, "info": {"skipped": False, "providers": gpu_eps, "tensorrt_cache": str(cache),
                                     "errors": errors}}
