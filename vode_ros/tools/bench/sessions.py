"""ONNX Runtime sessions as the bench times them: graph optimisation ALL, intra-op threads = --threads,
inter-op 1, sequential execution."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def ort_settings(threads: int) -> dict[str, Any]:
    return {"graph_optimization_level": "ORT_ENABLE_ALL", "intra_op_num_threads": threads,
            "inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL"}


def session_options(threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return opts


def make_session(path: Path, threads: int, provider: str = "CPUExecutionProvider",
                 provider_options: dict | None = None):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(threads), providers=[provider],
                                provider_options=[provider_options or {}])
