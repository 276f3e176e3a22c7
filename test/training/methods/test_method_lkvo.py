"""LKVOLearner / DDVO: the differentiable direct VO solver on a synthetic scene with exact ground
truth (convergence from a perturbed pose, gradients w.r.t. depth), the loss terms (small at the
truth, growing with the error), and 2 training steps of both stages at tiny size + ONNX export."""
import math

import numpy as np
import pytest
import torch

from vode_training.data.synthetic import generate_sequence
from vode_training.geometry import pose_vec2mat
from vode_training.losses.flow import rigid_warp
from vode_training.methods.lkvo import AppearanceTerm, normalise_inv_depth, normalised_smoothness_term
from vode_training.geometry import rescale_intrinsics, se3_exp
from vode_training.solvers.ddvo import ddvo_align

pytestmark = [pytest.mark.slow]

torch.set_num_threads(1)


def _t(a, dtype=torch.float32):
    return torch.tensor(np.asarray(a), dtype=dtype)


@pytest.fixture(scope="module")
def scene():
    """Frames 1 (reference, with GT depth; sky at 1 km and masked) and 2 of a synthetic street."""
    seq = generate_sequence(frames=3, width=416, height=128)
    depth = seq.depth[1].copy()
    sky = depth == 0
    depth[sky] = 1000.0
    return {"ref": _t(seq.left[1] / 255.0)[None, None], "cur": _t(seq.left[2] / 255.0)[None, None],
            "depth": _t(depth)[None, None], "ground": _t(~sky)[None, None], "k": _t(seq.k)[None],
            "T": _t(seq.relative(1, 2))[None]}      # T_cur_ref: maps reference (1) points into frame 2


def _errors(t_est, t_true):
    d = torch.linalg.inv(t_true) @ t_est
    trans = d[:, :3, 3].norm(dim=-1)
    angle = torch.arccos(((torch.diagonal(d[:, :3, :3], dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    return trans, angle


def test_se3_exp_matches_matrix_exponential():
    xi = torch.tensor([[0.3, -0.2, 0.5, 0.1, -0.2, 0.3], [0.1, 0.0, 0.0, 1e-6, 0.0, 0.0]], dtype=torch.float64)
    twist = torch.zeros(2, 4, 4, dtype=torch.float64)
    for b in range(2):
        w = xi[b, 3:]
        twist[b, :3, :3] = torch.tensor([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
        twist[b, :3, 3] = xi[b, :3]
    assert torch.allclose(se3_exp(xi), torch.linalg.matrix_exp(twist), atol=1e-10)
    assert torch.allclose(se3_exp(torch.zeros(1, 6)), torch.eye(4)[None])


def test_ddvo_converges_to_true_pose_from_perturbed_start(scene):
    """Given GT depth, the solver brings a perturbed pose > 10x closer to the true relative pose."""
    perturb = torch.tensor([[0.15, -0.05, 0.3, 0.01, -0.02, 0.01],      # ~34 cm, 1.4 deg
                            [0.0, 0.1, -0.5, -0.02, 0.03, 0.02]])      # ~51 cm, 2.4 deg
    t_true = scene["T"].repeat(2, 1, 1)
    t0 = t_true @ pose_vec2mat(perturb)
    rep = lambda x: x.repeat(2, 1, 1, 1)                                # noqa: E731
    t_est, costs = ddvo_align(rep(scene["ref"]), rep(scene["cur"]), rep(scene["depth"]), scene["k"].repeat(2, 1, 1),
                              t0, levels=3, iters=10, mask=rep(scene["ground"]), return_costs=True)
    e0_t, e0_r = _errors(t0, t_true)
    e1_t, e1_r = _errors(t_est, t_true)
    assert (e1_t * 10 < e0_t).all(), (e0_t, e1_t)
    assert (e1_r * 10 < e0_r).all(), (e0_r, e1_r)
    assert (e1_t < 0.03).all() and (e1_r < 0.003).all()                 # m, rad (1 m/frame motion)
    assert (costs[-1][-1] < 0.5 * costs[0][0]).all()                    # photometric cost fell


def test_ddvo_pose_is_differentiable_wrt_depth(scene):
    """d(pose)/d(depth scale) by autograd through all Gauss-Newton steps = finite differences:
    scaling the depth by s scales the solved translation by about s (the solver sees the depth)."""
    f64 = lambda x: x.double()                                          # noqa: E731
    ref, cur = f64(scene["ref"][..., ::2, ::2]), f64(scene["cur"][..., ::2, ::2])
    k = rescale_intrinsics(f64(scene["k"]), 0.5, 0.5)
    k[:, 0, 2] += 0.25      # ::2 subsampling keeps pixel centres 2u (not 2u + 0.5)
    k[:, 1, 2] += 0.25
    depth, ground = f64(scene["depth"][..., ::2, ::2]), f64(scene["ground"][..., ::2, ::2])
    t0 = f64(scene["T"]) @ pose_vec2mat(torch.tensor([[0.05, 0.0, 0.1, 0.0, 0.01, 0.0]], dtype=torch.float64))

    def solved_tz(scale):
        return ddvo_align(ref, cur, depth * scale, k, t0, levels=2, iters=6, mask=ground)[0, 2, 3]

    scale = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    tz = solved_tz(scale)
    (grad,) = torch.autograd.grad(tz, scale)
    eps = 1e-4
    with torch.no_grad():
        fd = (solved_tz(torch.tensor(1 + eps, dtype=torch.float64))
              - solved_tz(torch.tensor(1 - eps, dtype=torch.float64))) / (2 * eps)
    assert torch.isfinite(grad) and grad.abs() > 0.1
    assert grad.item() == pytest.approx(fd.item(), rel=1e-3, abs=1e-6)
    # and the gradient of a photometric loss reaches a per-pixel depth map through the pose alone
    d = depth.clone().requires_grad_(True)
    t = ddvo_align(ref, cur, d, k, t0, levels=2, iters=3, mask=ground)
    warped, valid, _ = rigid_warp(cur, depth, t, k)                    # depth itself not in the graph here
    loss = ((warped - ref).abs() * valid * ground).mean()
    (g,) = torch.autograd.grad(loss, d)
    assert torch.isfinite(g).all() and (g != 0).float().mean() > 0.5


def test_appearance_term_small_at_truth_and_grows(scene):
    term = AppearanceTerm(1.0, 0.85)
    tgt_pyr, k_pyr, cur_pyr, inv_pyr = [scene["ref"]], [scene["k"]], [scene["cur"]], [1 / scene["depth"]]
    ground = [scene["ground"]]
    for _ in range(3):
        tgt_pyr.append(torch.nn.functional.avg_pool2d(tgt_pyr[-1], 2))
        cur_pyr.append(torch.nn.functional.avg_pool2d(cur_pyr[-1], 2))
        inv_pyr.append(torch.nn.functional.avg_pool2d(inv_pyr[-1], 2))
        ground.append((torch.nn.functional.avg_pool2d(ground[-1], 2) == 1).float())
        k_pyr.append(rescale_intrinsics(k_pyr[-1], 0.5, 0.5))
    values = []
    for err in (0.0, 0.03, 0.1, 0.3):
        t = scene["T"] @ pose_vec2mat(torch.tensor([[err, 0.0, err, 0.0, err / 10, 0.0]]))
        warped, valid = [], []
        for s in range(4):
            w, v, _ = rigid_warp(cur_pyr[s], 1 / inv_pyr[s], t, k_pyr[s])
            warped.append([w])
            valid.append([v * ground[s]])
        values.append(term({"tgt_pyramid": tgt_pyr, "warped": warped, "valid": valid}, {}).item())
    assert values[0] < 0.03
    assert values[0] < 0.5 * values[1] and values[1] < values[2] < values[3]


def test_normalised_smoothness_and_mean_normalisation():
    inv = 0.5 + torch.rand(2, 1, 16, 24)
    norm = normalise_inv_depth(inv)
    assert torch.allclose(norm.mean(dim=(1, 2, 3)), torch.ones(2), atol=1e-5)
    assert torch.allclose(normalise_inv_depth(inv * 7.0), norm, atol=1e-5)   # scale-free
    img = torch.rand(2, 1, 16, 24)
    term = normalised_smoothness_term(1.0)
    assert term({"inv_depths": [torch.ones(2, 1, 16, 24)], "tgt_pyramid": [img]}, {}).item() == 0.0
    gen = torch.Generator().manual_seed(0)
    vals = [term({"inv_depths": [normalise_inv_depth(1 + a * torch.rand(2, 1, 16, 24, generator=gen))],
                  "tgt_pyramid": [img]}, {}).item() for a in (0.05, 0.2, 1.0)]
    assert 0 < vals[0] < vals[1] < vals[2]


@pytest.mark.needs_data
def test_two_steps_of_both_stages_and_export(tmp_path, repo_dir, tiny_train):
    from vode_ros.runtime.inference import DepthNet, load_models
    from vode_training.config import load_config
    from vode_training.export import export_checkpoint
    from vode_training.checkpoint import load_checkpoint
    from vode_training.trainer import Trainer

    cfg1 = load_config(repo_dir / "config" / "train" / "lkvo.yaml", tiny_train)
    s1 = Trainer(cfg1, tmp_path / "s1", progress=False).train()
    assert math.isfinite(s1["final_loss"]) and s1["final_loss"] > 0
    ck1 = load_checkpoint(s1["checkpoint"])

    cfg2 = load_config(repo_dir / "config" / "train" / "lkvo_stage2.yaml",
                       tiny_train + [f"train.init={s1['checkpoint']}", "model.ddvo_iters=2"])
    assert cfg2["train"]["freeze"] == ["pose"] and cfg2["model"]["stage"] == 2
    s2 = Trainer(cfg2, tmp_path / "s2", progress=False).train()
    assert math.isfinite(s2["final_loss"]) and s2["final_loss"] > 0
    ck2 = load_checkpoint(s2["checkpoint"])
    for key, val in ck1["models"]["pose"].items():                   # PoseCNN: initialiser only
        assert torch.equal(val, ck2["models"]["pose"][key])
    assert any(not torch.equal(v, ck2["models"]["depth"][k]) for k, v in ck1["models"]["depth"].items())

    report = export_checkpoint(s2["checkpoint"], tmp_path / "onnx")
    assert set(report["files"]) == {"depth", "pose"}
    for f in report["files"].values():
        assert f["parity_max_abs"] <= f["tolerance"]
    depth, pose = load_models(tmp_path / "onnx", ["CPUExecutionProvider"])
    assert depth.meta.method == "lkvo" and not depth.meta.metric_scale
    inv = depth.run(np.zeros((1, 1, 64, 128), np.float32) + 0.1)
    assert inv.mean() == pytest.approx(1.0, rel=1e-4)                   # mean-normalised inverse depth
    assert DepthNet(depth)(np.zeros((1, 64, 128), np.float32)).shape == (64, 128)
