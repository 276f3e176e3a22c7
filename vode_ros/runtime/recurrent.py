"""Run a recurrent ONNX model frame by frame, carrying its state (numpy + ONNX Runtime only).

A recurrent vode model (RNN-MVOD's depth.onnx / pose.onnx) has, besides its data inputs
(``image``, for a non-bundled pose model also ``inv_depth``), one graph input per state tensor
and a matching output, listed in the metadata:

    vode.recurrent = "true"
    vode.state     = [{"input": "pose_h0_in", "output": "pose_h0_out", "shape": [1, 64, 16, 52]}, ...]

:class:`RecurrentSession` holds that state (zeros at the start), feeds it with every step and
keeps the new one:

    sess = RecurrentSession("models/pose.onnx")      # or an onnxruntime.InferenceSession
    for img in frames:
        out = sess.step({"image": net_input[None]})  # -> {"pose": ..., "inv_depth": ...}
        if sess.steps > 1:                           # the first step after a reset has no previous frame
            use(out["pose"])

``reset()`` zeroes the state (on a time jump, a bag loop, a model swap). With ``stamp=`` the
session resets itself when time goes backwards or jumps forward by more than ``max_gap_s``;
``last_reset_reason`` then says why. A non-recurrent model works too (no state, plain run).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def state_spec(metadata: dict[str, str]) -> list[dict[str, Any]]:
    """The ``vode.state`` list of a model's metadata ([] when the model is not recurrent)."""
    if str(metadata.get("vode.recurrent", "false")).lower() != "true":
        return []
    spec = json.loads(metadata.get("vode.state", "[]"))
    for s in spec:
        if not {"input", "output", "shape"} <= set(s):
            raise ValueError(f"vode.state entry {s} needs input, output and shape")
    return spec


def is_recurrent(metadata: dict[str, str]) -> bool:
    return bool(state_spec(metadata))


class RecurrentSession:
    """An ONNX Runtime session plus the recurrent state it carries between frames."""

    def __init__(self, model: Any, providers: list[str] | None = None, max_gap_s: float | None = None):
        """``model``: a path to an .onnx file or an existing onnxruntime.InferenceSession.
        ``max_gap_s``: with ``step(..., stamp=...)``, reset when frames are further apart than this."""
        if isinstance(model, (str, Path)):
            import onnxruntime as ort

            model = ort.InferenceSession(str(model), providers=providers or ["CPUExecutionProvider"])
        self.session = model
        self.metadata = dict(model.get_modelmeta().custom_metadata_map)
        self.spec = state_spec(self.metadata)
        self.input_names = [i.name for i in model.get_inputs()]
        self.output_names = [o.name for o in model.get_outputs()]
        graph_in = {i.name: list(i.shape) for i in model.get_inputs()}
        for s in self.spec:
            if s["input"] not in graph_in or s["output"] not in self.output_names:
                raise ValueError(f"vode.state names {s['input']} -> {s['output']}, which the graph does not have")
            if graph_in[s["input"]] != list(s["shape"]):
                raise ValueError(f"state {s['input']}: metadata shape {s['shape']} != graph shape {graph_in[s['input']]}")
        state_in = {s["input"] for s in self.spec}
        self.state_outputs = {s["output"] for s in self.spec}
        self.data_inputs = [n for n in self.input_names if n not in state_in]
        self.max_gap_s = max_gap_s
        self.last_stamp: float | None = None
        self.resets = 0
        self.last_reset_reason = ""
        self.reset()
        self.resets, self.last_reset_reason = 0, ""

    @property
    def recurrent(self) -> bool:
        return bool(self.spec)

    def reset(self, reason: str = "reset") -> None:
        """Zero the state: the next step starts a new sequence."""
        self.state = {s["input"]: np.zeros(s["shape"], np.float32) for s in self.spec}
        self.steps = 0
        self.last_stamp = None
        self.resets += 1
        self.last_reset_reason = reason

    def _check_time(self, stamp: float) -> None:
        if self.last_stamp is not None:
            if stamp < self.last_stamp:
                self.reset(f"time went back {self.last_stamp:.3f} -> {stamp:.3f} s")
            elif self.max_gap_s is not None and stamp - self.last_stamp > self.max_gap_s:
                self.reset(f"gap of {stamp - self.last_stamp:.3f} s > {self.max_gap_s:g} s")
        self.last_stamp = stamp

    def step(self, inputs: dict[str, np.ndarray] | np.ndarray, stamp: float | None = None) -> dict[str, np.ndarray]:
        """One frame: data inputs (a dict, or one array for a single-input model) -> data outputs by
        name; the state outputs become the next step's state inputs."""
        if stamp is not None:
            self._check_time(float(stamp))
        if not isinstance(inputs, dict):
            if len(self.data_inputs) != 1:
                raise ValueError(f"this model takes {self.data_inputs}: pass a dict")
            inputs = {self.data_inputs[0]: inputs}
        missing = [n for n in self.data_inputs if n not in inputs]
        if missing:
            raise ValueError(f"missing model input(s) {missing}; the model takes {self.data_inputs}")
        feeds = {n: np.ascontiguousarray(inputs[n], dtype=np.float32) for n in self.data_inputs}
        feeds.update(self.state)
        outs = dict(zip(self.output_names, self.session.run(None, feeds)))
        self.state = {s["input"]: outs[s["output"]] for s in self.spec}
        self.steps += 1
        return {k: v for k, v in outs.items() if k not in self.state_outputs}
