"""ONNX Runtime provider list: TensorRT only where its libraries import; unknown names refused."""
from __future__ import annotations

from vode_ros.runtime import inference


def test_tensorrt_is_left_out_when_its_libraries_do_not_import(monkeypatch):
    monkeypatch.setattr(inference, "available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(inference, "_tensorrt_importable", lambda: False)
    assert inference.choose_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(inference, "_tensorrt_importable", lambda: True)
    assert inference.choose_providers()[0] == "TensorrtExecutionProvider"


def test_unknown_provider_names_are_a_problem():
    assert inference.provider_problem(["CPUExecutionProvider"]) is None
    assert "unknown ONNX Runtime execution provider(s) BogusProvider" in inference.provider_problem(["BogusProvider"])
    assert "at least one" in inference.provider_problem([])
