"""Static QDQ int8 quantisation with graph surgery: the stem and the output tail stay fp32 (they
carry most of the accuracy loss for little time), identity initialisers are inlined first."""
from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .random_nets import add_metadata


def _tail_nodes(model) -> list[str]:
    """Names of the last Conv on each path to a graph output and of everything after it.

    They stay fp32: 8-bit steps on the sigmoid-mapped inverse depth (or on the 0.01-scaled pose)
    would be a large relative error at far range, and these few nodes cost little."""
    producers = {o: n for n in model.graph.node for o in n.output}
    stop = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
    tail, todo = set(), [o.name for o in model.graph.output]
    while todo:
        node = producers.get(todo.pop())
        if node is None or node.name in tail:
            continue
        tail.add(node.name)
        if node.op_type not in stop:
            todo.extend(node.input)
    return sorted(tail)


def _stem_nodes(model, max_channels: int = 8) -> list[str]:
    """The first Conv(s) reading the graph input when it has few channels (an image): stay fp32.

    An int8 conv on 1..6 input channels runs ORT's generic im2col path, slower than its fp32
    NCHWc kernel (profiled: the stem of LiteDepthNet took 11 % of the int8 run time)."""
    inputs = {i.name: i for i in model.graph.input}
    out = []
    for node in model.graph.node:
        if node.op_type == "Conv" and node.input and node.input[0] in inputs:
            dims = inputs[node.input[0]].type.tensor_type.shape.dim
            if len(dims) == 4 and dims[1].dim_value and dims[1].dim_value <= max_channels:
                out.append(node.name)
    return out


def _inline_identity_initializers(model) -> int:
    """Replace Identity nodes that copy an initializer by a copy of that initializer.

    torch.onnx deduplicates equal parameters (e.g. all-zero biases) into one initializer plus
    Identity nodes; the quantiser needs each Conv bias as an initializer to quantise it to int32
    (else "Expected bias ... to be an initializer" and slower QDQ convs). This is what
    onnxruntime's quant_pre_process achieves for these graphs, without its shape-inference passes
    and model round trips (seconds on the 126 MB DispNet)."""
    import onnx

    inits = {t.name: t for t in model.graph.initializer}
    keep, n = [], 0
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            model.graph.initializer.append(t)
            n += 1
        else:
            keep.append(node)
    if n:
        del model.graph.node[:]
        model.graph.node.extend(keep)
    return n


def quantize_int8(fp32_path: Path, out_path: Path, calib: list[np.ndarray], keep_stem_fp32: bool = True,
                  pre_process: bool = False) -> dict[str, Any]:
    """Static int8 quantisation, QDQ format, per-channel int8 weights, uint8 activations (MinMax
    calibration on ``calib``); the output head (``_tail_nodes``) and, with ``keep_stem_fp32``, the
    first conv on the image (``_stem_nodes``) stay fp32. Metadata is kept."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(fp32_path))
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    meta = {p.key: p.value for p in model.metadata_props}
    in_name = model.graph.input[0].name
    def fp32_nodes(m):
        return _tail_nodes(m) + (_stem_nodes(m) if keep_stem_fp32 else [])

    exclude = fp32_nodes(model)
    pre = out_path.with_suffix(".pre.onnx")
    preprocessed = False
    src = model
    if pre_process:   # ORT's recommended pre-processing (shape inference + graph optimisation)
        try:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quant_pre_process(model, str(pre), skip_symbolic_shape=True)
            src = onnx.load(str(pre))
            names = {n.name for n in src.graph.node}
            if not set(exclude) <= names:          # renamed by the optimiser: recompute on its graph
                exclude = fp32_nodes(src)
            preprocessed = True
        except Exception:   # noqa: BLE001 - fall back to the exported graph
            src = model
    if not preprocessed:
        _inline_identity_initializers(src)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {in_name: x.astype(np.float32)}

    def quiet(record) -> bool:   # the quantiser's root-logger advice to pre-process: done above
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(quiet)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(src, str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude)
    finally:
        root.removeFilter(quiet)
    seconds = time.perf_counter() - t0
    if pre.exists():
        pre.unlink()
    q = onnx.load(str(out_path))
    meta["vode.quantization"] = (f"int8 static QDQ, per-channel int8 weights, uint8 activations, MinMax on "
                                 f"{len(calib)} inputs, fp32 nodes: {len(exclude)}")
    add_metadata(q, meta)
    onnx.save(q, str(out_path))
    return {"path": str(out_path), "calibration_inputs": len(calib), "fp32_nodes": exclude,
            "pre_processed": "quant_pre_process" if preprocessed else "identity initializers inlined",
            "seconds": round(seconds, 2)}
