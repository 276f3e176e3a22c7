"""GeoNet: rigid flow / flow warping against the geometry core, its loss terms on a synthetic scene
with exact ground truth (small at the truth, growing with the error), and 2 training steps of both
stages at tiny size with an ONNX export that passes the parity check and loads in the run time."""
import math

import numpy as np
import pytest
import torch

from vode_training.data.synthetic import generate_sequence
from vode_training.geometry import inverse_warp, pose_vec2mat
from vode_training.losses.flow import (flow_consistency_loss, flow_smoothness, flow_warp, forward_backward_check,
                                       rigid_flow, rigid_warp)
from vode_training.methods.geonet import (depth_smoothness_term, FlowConsistencyTerm, FlowSmoothnessTerm, FlowWarpTerm,
                                          RigidWarpTerm)

pytestmark = [pytest.mark.slow]

torch.set_num_threads(1)


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float32)


@pytest.fixture(scope="module")
def scene():
    """Frames 0 (source) and 1 (target) of a synthetic street, GT depth (sky at 1 km, masked)."""
    seq = generate_sequence(frames=2, width=416, height=128, seed=3)
    out = {"k": _t(seq.k)[None], "T_s_t": _t(seq.relative(1, 0))[None]}
    for name, i in (("tgt", 1), ("src", 0)):
        depth = seq.depth[i].copy()
        sky = depth == 0
        depth[sky] = 1000.0
        out[name] = _t(seq.left[i] / 255.0)[None, None]
        out[f"depth_{name}"] = _t(depth)[None, None]
        out[f"ground_{name}"] = _t(~sky)[None, None]
    return out


def test_rigid_flow_warp_equals_inverse_warp():
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(2, 1, 32, 48, generator=gen)
    depth = 2 + 8 * torch.rand(2, 1, 32, 48, generator=gen)
    pose = pose_vec2mat(torch.tensor([[0.1, -0.05, 0.5, 0.02, -0.03, 0.01], [-0.2, 0.0, -0.3, 0.0, 0.05, 0.0]]))
    k = torch.tensor([[[40.0, 0, 23.5], [0, 40.0, 15.5], [0, 0, 1]]]).repeat(2, 1, 1)
    w1, v1, flow = rigid_warp(img, depth, pose, k)
    w2, v2 = inverse_warp(img, depth, pose, k, padding_mode="border")
    assert torch.allclose(w1, w2, atol=1e-5) and torch.equal(v1, v2)
    # identity pose -> zero flow; flow_warp with zero flow is the identity
    assert rigid_flow(depth, torch.eye(4).repeat(2, 1, 1), k).abs().max() < 1e-4
    same, valid = flow_warp(img, torch.zeros(2, 2, 32, 48))
    assert torch.allclose(same, img, atol=1e-6) and valid.min() == 1
    # a constant flow of +1 px in u samples the right neighbour
    shifted, valid = flow_warp(img, torch.stack([torch.ones(2, 32, 48), torch.zeros(2, 32, 48)], 1))
    assert torch.allclose(shifted[..., :-1], img[..., 1:], atol=1e-6)
    assert valid[..., :-1].min() == 1 and valid[..., -1].max() == 0      # the last column leaves the image
    assert flow_warp(img, torch.full((2, 2, 32, 48), 40.0))[1].max() == 0


def test_rigid_warp_term_small_at_truth_and_grows(scene):
    term = RigidWarpTerm(1.0, 0.85)
    values = []
    for err in (0.0, 0.02, 0.05, 0.1):
        t = scene["T_s_t"] @ pose_vec2mat(torch.tensor([[err, 0.0, err, 0.0, err / 10, 0.0]]))
        warped, valid, _ = rigid_warp(scene["src"], scene["depth_tgt"], t, scene["k"])
        out = {"rigid_pairs": [[(warped, scene["tgt"], valid * scene["ground_tgt"])]]}
        values.append(term(out, {}).item())
    assert values[0] < 0.05                       # rendering differences only (no noise, no occlusion model)
    assert values[0] < 0.5 * values[1] < values[1] < values[2] < values[3]


def test_depth_smoothness_term():
    img = torch.rand(1, 1, 32, 48)
    flat = {"disps_all": [torch.full((1, 1, 32, 48), 0.1), torch.full((1, 1, 16, 24), 0.1)], "depth_images": img}
    assert depth_smoothness_term(1.0, True)(flat, {}).item() < 1e-7
    vals = []
    for a in (0.01, 0.03, 0.1):
        noisy = {"disps_all": [0.1 + a * torch.rand(1, 1, 32, 48), 0.1 + a * torch.rand(1, 1, 16, 24)],
                 "depth_images": img}
        vals.append(depth_smoothness_term(1.0, True)(noisy, {}).item())
    assert 0 < vals[0] < vals[1] < vals[2]


def test_flow_smoothness_zero_for_constant_flow_and_edge_aware():
    img = torch.zeros(1, 1, 32, 48)
    assert flow_smoothness(torch.full((1, 2, 32, 48), 3.0), img).item() == 0.0
    step = torch.zeros(1, 2, 32, 48)
    step[..., 24:] = 5.0                                # flow discontinuity at column 24
    flat_img_loss = flow_smoothness(step, img).item()
    edge_img = torch.zeros(1, 1, 32, 48)
    edge_img[..., 24:] = 1.0                            # image edge at the same place
    assert 0 < flow_smoothness(step, edge_img).item() < flat_img_loss
    term = FlowSmoothnessTerm(1.0)
    vals = [term({"full_flows": [a * torch.randn(1, 2, 32, 48, generator=torch.Generator().manual_seed(0))],
                  "flow_targets": [img]}, {}).item() for a in (0.1, 0.5, 2.0)]
    assert 0 < vals[0] < vals[1] < vals[2]


def test_forward_backward_consistency_at_truth_occlusion_and_growth(scene):
    fwd = rigid_flow(scene["depth_tgt"], scene["T_s_t"], scene["k"])
    bwd = rigid_flow(scene["depth_src"], torch.linalg.inv(scene["T_s_t"]), scene["k"])
    diff, ok = forward_backward_check(fwd, bwd)
    assert ok.mean() > 0.9                                        # static scene: almost all consistent
    assert (diff.norm(dim=1, keepdim=True) * ok).sum() / ok.sum() < 0.1   # px, sub-pixel at the truth
    loss = [flow_consistency_loss(fwd + off, bwd).item() for off in (0.0, 0.25, 0.5, 1.0)]
    assert loss[0] < 0.1 and loss[0] < loss[1] < loss[2] < loss[3]
    # an "occlusion": a patch whose forward flow is 20 px off fails the check and is masked out
    bad = fwd.clone()
    bad[..., 40:80, 100:200] += 20.0
    _, ok_bad = forward_backward_check(bad, bwd)
    assert ok_bad[..., 40:80, 100:200].mean() < 0.05
    assert flow_consistency_loss(bad, bwd).item() < loss[0] + 0.1   # masked: not counted
    term = FlowConsistencyTerm(1.0, 3.0, 0.05)
    out = {"full_flows": [torch.cat([fwd, bwd], 0)], "n_pairs": 1}
    assert term(out, {}).item() == pytest.approx(loss[0], rel=1e-5)


def test_flow_warp_term_small_with_true_flow_and_grows(scene):
    """Stage-2 full-flow warping: with the true (rigid) flow and zero residual ~ 0, grows with a residual error."""
    fwd = rigid_flow(scene["depth_tgt"], scene["T_s_t"], scene["k"])
    bwd = rigid_flow(scene["depth_src"], torch.linalg.inv(scene["T_s_t"]), scene["k"])
    term = FlowWarpTerm(1.0, 0.85)
    vals = []
    for err in (0.0, 0.5, 1.0, 2.0):
        full = torch.cat([fwd, bwd], 0) + err
        warped, inside = flow_warp(torch.cat([scene["src"], scene["tgt"]], 0), full)
        _, ok_f = forward_backward_check(full[:1], full[1:], 1e3)      # keep every pixel: compare like with like
        _, ok_b = forward_backward_check(full[1:], full[:1], 1e3)
        ground = torch.cat([scene["ground_tgt"], scene["ground_src"]], 0)
        out = {"flow_warped": [warped], "flow_valid": [inside * torch.cat([ok_f, ok_b], 0) * ground],
               "flow_targets": [torch.cat([scene["tgt"], scene["src"]], 0)]}
        vals.append(term(out, {}).item())
    assert vals[0] < 0.05 and vals[0] < 0.5 * vals[1] and vals[1] < vals[2] < vals[3]


@pytest.mark.needs_data
def test_two_steps_of_both_stages_and_export(tmp_path, repo_dir, tiny_train):
    from vode_ros.runtime.inference import load_models
    from vode_training.config import load_config
    from vode_training.export import export_checkpoint
    from vode_training.checkpoint import load_checkpoint
    from vode_training.trainer import Trainer

    cfg1 = load_config(repo_dir / "config" / "train" / "geonet.yaml", tiny_train)
    s1 = Trainer(cfg1, tmp_path / "s1", progress=False).train()
    assert math.isfinite(s1["final_loss"]) and s1["final_loss"] > 0
    ck1 = load_checkpoint(s1["checkpoint"])
    assert set(ck1["models"]) == {"depth", "pose"}

    cfg2 = load_config(repo_dir / "config" / "train" / "geonet_stage2.yaml",
                       tiny_train + [f"train.init={s1['checkpoint']}", "model.resflow_enc_channels=[8, 16, 16, 32, 32]",
                               "model.resflow_dec_channels=[8, 8, 16, 16, 32]"])
    assert cfg2["train"]["freeze"] == ["depth", "pose"] and cfg2["model"]["stage"] == 2
    s2 = Trainer(cfg2, tmp_path / "s2", progress=False).train()
    assert math.isfinite(s2["final_loss"]) and s2["final_loss"] > 0
    ck2 = load_checkpoint(s2["checkpoint"])
    assert set(ck2["models"]) == {"depth", "pose", "resflow"}
    for net in ("depth", "pose"):                       # frozen in stage 2
        for key, val in ck1["models"][net].items():
            assert torch.equal(val, ck2["models"][net][key]), f"{net}.{key} changed in stage 2"

    report = export_checkpoint(s2["checkpoint"], tmp_path / "onnx")
    assert set(report["files"]) == {"depth", "pose"}
    for f in report["files"].values():
        assert f["parity_max_abs"] <= f["tolerance"]
    depth, pose = load_models(tmp_path / "onnx", ["CPUExecutionProvider"])
    assert depth.meta.method == "geonet" and not depth.meta.metric_scale
    assert (pose.meta.width, pose.meta.height) == (128, 64)
