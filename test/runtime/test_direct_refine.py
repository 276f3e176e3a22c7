"""Run-time direct pose refinement (numpy): equal to the torch DDVO solver on the same inputs,
converges on a synthetic scene with exact ground truth, falls back to the pose net, no torch import."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from vode_ros.core.geometry import se3_exp
from vode_ros.runtime.direct_refine import direct_align, gray_from_net_input, refine_motion
from vode_ros.core.geometry import invert_se3, pose_vec2mat
from vode_training.data.synthetic import generate_sequence
from vode_training.solvers.ddvo import ddvo_align
from vode_training.geometry import se3_exp as se3_exp_torch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def scene():
    """Previous frame 1 (GT depth; sky at 1 km, masked) and current frame 2 of a synthetic street."""
    seq = generate_sequence(frames=3, width=416, height=128, seed=1)
    depth = seq.depth[1].copy()
    sky = depth == 0
    depth[sky] = 1000.0
    return {"prev": seq.left[1] / 255.0, "cur": seq.left[2] / 255.0, "depth": depth, "ground": (~sky).astype(float),
            "k": seq.k, "T_prev_cur": seq.relative(2, 1)}


def _trans_rot_err(t_est, t_true):
    d = invert_se3(t_true) @ t_est
    return np.linalg.norm(d[:3, 3]), np.arccos(np.clip((np.trace(d[:3, :3]) - 1) / 2, -1, 1))


def test_se3_exp_equals_torch():
    for xi in ([0.3, -0.2, 0.5, 0.1, -0.2, 0.3], [0.1, 0.0, 0.2, 1e-5, 0.0, -1e-5], [0.0] * 6):
        ref = se3_exp_torch(torch.tensor([xi], dtype=torch.float64))[0].numpy()
        assert np.abs(se3_exp(np.array(xi)) - ref).max() < 1e-12


@pytest.mark.parametrize("huber,use_mask", [(None, False), (0.05, True)])
def test_numpy_solver_equals_torch_solver(scene, huber, use_mask):
    t_cur_prev = invert_se3(scene["T_prev_cur"])
    t_init = t_cur_prev @ pose_vec2mat([0.15, -0.05, 0.3, 0.01, -0.02, 0.01])
    mask = scene["ground"] if use_mask else None
    t_np, costs_np = direct_align(scene["prev"], scene["cur"], scene["depth"], scene["k"], t_init, levels=3, iters=5,
                                  huber=huber, mask=mask, return_costs=True)

    def tt(a, dtype):
        return torch.tensor(np.asarray(a), dtype=dtype)[None]

    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
        t_torch, costs_torch = ddvo_align(
            tt(scene["prev"], dtype)[None], tt(scene["cur"], dtype)[None], tt(scene["depth"], dtype)[None],
            tt(scene["k"], dtype), tt(t_init, dtype), levels=3, iters=5, huber=huber,
            mask=None if mask is None else tt(mask, dtype)[None], return_costs=True)
        assert np.abs(t_np - t_torch[0].double().numpy()).max() < tol, dtype
        flat_np = [c for level in costs_np for c in level]
        flat_torch = [c.item() for level in costs_torch for c in level]
        assert np.allclose(flat_np, flat_torch, rtol=tol * 10, atol=1e-9), dtype
    assert np.abs(t_np - t_init).max() > 1e-2                          # it did move


def test_refine_motion_converges_from_perturbed_pose_net_estimate(scene):
    t_true = scene["T_prev_cur"]
    t_net = t_true @ pose_vec2mat([0.1, 0.05, -0.3, 0.01, 0.02, -0.01])   # a pose net ~32 cm, 1.4 deg off
    t_ref, info = refine_motion(scene["prev"], scene["cur"], scene["depth"], scene["k"], t_net)
    e0 = _trans_rot_err(t_net, t_true)
    e1 = _trans_rot_err(t_ref, t_true)
    assert info.used and info.cost_final < 0.5 * info.cost_init and info.overlap > 0.5
    assert e1[0] * 10 < e0[0] and e1[1] * 10 < e0[1], (e0, e1)


def test_refine_motion_falls_back_to_the_pose_net(scene):
    t_net = scene["T_prev_cur"] @ pose_vec2mat([0.1, 0.0, 0.2, 0.0, 0.01, 0.0])
    t_out, info = refine_motion(scene["prev"], scene["cur"], scene["depth"], scene["k"], t_net, min_overlap=1.01)
    assert not info.used and "overlap" in info.reason and np.array_equal(t_out, t_net)
    # images that do not match at all: the cost cannot be lowered much, and never raised
    rng = np.random.default_rng(0)
    noise = rng.random(scene["prev"].shape)
    t_out, info = refine_motion(scene["prev"], noise, scene["depth"], scene["k"], t_net)
    assert info.used or np.array_equal(t_out, t_net)
    assert not info.used or info.cost_final < info.cost_init


def test_gray_from_net_input():
    img = np.random.default_rng(0).random((3, 8, 12)).astype(np.float32)
    mean, std = [0.45, 0.4, 0.35], [0.225, 0.2, 0.25]
    net_in = (img - np.reshape(mean, (3, 1, 1))) / np.reshape(std, (3, 1, 1))
    assert np.allclose(gray_from_net_input(net_in, mean, std), img.mean(0), atol=1e-6)
    assert np.allclose(gray_from_net_input((img[:1] - 0.45) / 0.225, [0.45], [0.225]), img[0], atol=1e-6)


def test_direct_refine_does_not_import_torch():
    code = "import sys, vode_ros.runtime.direct_refine; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
