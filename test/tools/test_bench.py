"""`vode bench` smoke run (tiny sizes), the lite / DispNet nets, the registry, int8 quantisation.

No timed asserts: speed is only checked to be measured (positive FPS)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vode_training.nets.dispnet import DispNet
from vode_training.nets.lite import LiteDepthNet, LitePoseNet
from vode_training.nets.registry import DEPTH_NETS, POSE_NETS, build_depth_net, build_pose_net

pytestmark = [pytest.mark.slow, pytest.mark.ros]

torch.set_num_threads(2)
DATA = Path(__file__).resolve().parents[2] / "data" / "kitti_odometry_06_0000-0050"


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_lite_nets_shapes_params_and_range():
    torch.manual_seed(0)
    net = LiteDepthNet(3, min_depth=0.5, max_depth=80.0, init_depth=10.0).eval()
    assert 3e5 < _params(net) < 3.5e6
    with torch.no_grad():
        outs = net(torch.randn(2, 3, 32, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 1, 32 // 2 ** s, 64 // 2 ** s) for s in range(4)]
    for o in outs:
        assert float(o.min()) >= 1 / 80.0 - 1e-6 and float(o.max()) <= 1 / 0.5 + 1e-6
    assert float(outs[0].mean()) == pytest.approx(0.1, rel=0.2)          # init_depth 10 m
    with torch.no_grad():
        assert len(LiteDepthNet(1, num_scales=2).eval()(torch.randn(1, 1, 32, 32))) == 2
    pose = LitePoseNet(3).eval()
    assert _params(pose) < 3.5e6
    with torch.no_grad():
        assert pose(torch.randn(2, 6, 32, 64)).shape == (2, 6)
    # Trainable end to end: every parameter of the depth net gets a gradient.
    net.train()
    sum(o.mean() for o in net(torch.randn(2, 3, 32, 64))).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_dispnet_faithful_size_and_outputs():
    net = DispNet(3)
    assert 30e6 <= _params(net) <= 34e6
    convs = [m for m in net.convs.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs[::2]] == [32, 64, 128, 256, 512, 512, 512]
    assert [c.kernel_size[0] for c in convs[::2]] == [7, 5, 3, 3, 3, 3, 3]
    net.eval()
    with torch.no_grad():
        bounded = net(torch.randn(1, 3, 64, 128))
        sfm = DispNet(3, output="sfmlearner").eval()(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in bounded] == [(1, 1, 64 // 2 ** s, 128 // 2 ** s) for s in range(4)]
    assert all(0.01 - 1e-6 <= float(o.min()) and float(o.max()) <= 10.0 + 1e-6 for o in bounded)
    assert [tuple(o.shape[-2:]) for o in sfm] == [(64, 96), (32, 48), (16, 24), (8, 12)]
    assert all(float(o.min()) >= 0.01 and float(o.max()) <= 10.01 for o in sfm)
    with pytest.raises(ValueError):
        DispNet(3, output="nope")


def test_registry():
    assert set(DEPTH_NETS) == {"small", "dispnet", "lite"} and set(POSE_NETS) == {"small", "lite"}
    assert isinstance(build_depth_net("lite", 1, num_scales=4, min_depth=0.1, max_depth=100.0, init_depth=10.0),
                      LiteDepthNet)
    assert isinstance(build_pose_net("lite", 1, output_scale=0.01, trans_scale=1.0), LitePoseNet)
    with pytest.raises(ValueError, match="choose one of"):
        build_depth_net("resnet", 3)
    with pytest.raises(ValueError, match="LiteDepthNet"):
        build_depth_net("lite", 3, output="sfmlearner")


@pytest.fixture(scope="module")
def tiny_depth(tmp_path_factory) -> Path:
    from vode_ros.tools.bench import NetSpec, export_random

    torch.manual_seed(0)
    net = build_depth_net("small", 1, enc_channels=(8, 16, 16, 32, 32), dec_channels=(8, 8, 16, 16, 32),
                          init_depth=10.0).eval()
    path = tmp_path_factory.mktemp("tiny") / "depth.onnx"
    return export_random(NetSpec("small", "depth", "tiny", net), 1, 128, 64, path)


def test_int8_quantisation_gives_a_loadable_model(tiny_depth, tmp_path):
    import onnx

    from vode_ros.tools.bench import calibration_batches, clip_inputs, quantize_int8
    from vode_ros.runtime.inference import OnnxModel

    frames = clip_inputs(tiny_depth, DATA, [0, 25, 50])
    assert frames[0].shape == (1, 64, 128) and frames[0].dtype == np.float32
    out = tmp_path / "depth.int8.onnx"
    info = quantize_int8(tiny_depth, out, calibration_batches("depth", frames))
    assert info["calibration_inputs"] == 3 and any("Sigmoid" in n for n in info["fp32_nodes"])
    model = onnx.load(str(out))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    loaded = OnnxModel(out, ["CPUExecutionProvider"], threads=2, expected_kind="depth")
    assert "int8" in loaded.meta.raw["vode.quantization"]
    fp32 = OnnxModel(tiny_depth, ["CPUExecutionProvider"], threads=2, expected_kind="depth")
    a, b = fp32.run(frames[1][None]), loaded.run(frames[1][None])
    assert a.shape == b.shape == (1, 1, 64, 128) and np.all(np.isfinite(b))
    assert np.median(np.abs(b / a - 1)) < 0.05


def test_vode_bench_quick_writes_json(tiny_depth, tmp_path, capsys):
    from vode_ros.cli.main import main

    out = tmp_path / "bench.json"
    rc = main(["bench", "--quick", "--seconds", "0.1", "--node-seconds", "0.5", "--calib-frames", "1",
               "--accuracy-frames", "2", "--depth-model", str(tiny_depth), "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "x DispNet ORT" in text and "GPU" in text
    rep = json.loads(out.read_text())
    for key in ("settings", "machine", "rows", "baseline", "depth_plus_pose", "target", "gpu", "nodes",
                "int8_accuracy"):
        assert key in rep, key
    assert rep["settings"]["ort"] == {"graph_optimization_level": "ORT_ENABLE_ALL", "intra_op_num_threads": 2,
                                      "inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL"}
    keys = {r["key"] for r in rep["rows"]}
    for kind, net in (("depth", "dispnet"), ("depth", "small"), ("depth", "lite"), ("pose", "small"), ("pose", "lite")):
        for runtime in ("torch", "ort-fp32", "ort-int8"):
            if (net, runtime) != ("dispnet", "ort-int8"):     # --quick leaves the 126 MB baseline fp32
                assert f"{kind}/{net}/{runtime}" in keys
    for r in rep["rows"]:
        assert r["fps"] > 0 and r["ms_p50"] > 0 and r["ms_p95"] >= r["ms_p50"] and r["params"] > 0
        assert r["ratio_to_baseline"] > 0
    assert rep["baseline"]["key"] == "depth/dispnet/ort-fp32"
    assert "lite+lite/ort-fp32" in rep["depth_plus_pose"]
    nodes = rep["nodes"]["lite_fp32@max"]
    assert "error" not in nodes, nodes
    for key in ("depth", "odom"):
        assert nodes[key]["hz"] > 0 and nodes[key]["raw_fps"] > 0 and nodes[key]["ratio_to_raw"] > 0
        assert nodes[key]["latency_ms_p50"] > 0
    acc = rep["int8_accuracy"]
    assert acc["frames"] == 2 and acc["int8_vs_fp32"]["abs_rel"] >= 0 and "fp32_vs_sgbm" in acc


def test_gpu_rows_skipped_or_reported(tiny_depth, tmp_path, monkeypatch):
    import onnxruntime as ort

    from vode_ros.tools.bench import BenchConfig, NetSpec, gpu_candidates

    spec = NetSpec("small", "depth", "tiny", fp32=tiny_depth)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    info = gpu_candidates([spec], BenchConfig(), tmp_path)["info"]
    assert info["skipped"] and "skipped" in info["line"]
    # A CUDA provider that is listed but cannot run here is reported, not silently timed on CPU.
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    out = gpu_candidates([spec], BenchConfig(), tmp_path)
    if not out["cands"]:
        assert out["info"]["errors"] and "CUDAExecutionProvider" in out["info"]["errors"][0]


@pytest.mark.slow
@pytest.mark.needs_data
def test_vode_bench_train_times_both_ssim_formulations(tmp_path, capsys):
    """`vode bench train` | the recipe's step with SSIM by AvgPool2d (baseline, ratio 1) and by shifted slices,
    times and ratios from one run, as a table and JSON; a missing recipe is named (exit 2)"""
    from vode_ros.cli.main import main

    out = tmp_path / "train.json"
    assert main(["bench", "train", "--steps", "1", "--rounds", "2", "--size", "64x32", "--batch", "2",
                 "--json", str(out)]) == 0
    assert "| SSIM by shifted slices (used) |" in capsys.readouterr().out
    rep = json.loads(out.read_text())
    assert rep["config"] == "config/train/driving.yaml" and rep["size"] == [64, 32] and rep["batch"] == 2
    base, used = rep["rows"]
    assert base["ratio"] == 1.0 and len(base["all"]) == len(used["all"]) == 2
    assert used["s_per_step"] > 0 and used["ratio"] == pytest.approx(base["s_per_step"] / used["s_per_step"])
    assert main(["bench", "train", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "--config" in capsys.readouterr().err
