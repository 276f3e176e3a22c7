"""vode_training.geometry: equal to the numpy twin, and warping a rendered scene is exact."""
import numpy as np
import pytest
import torch

from vode_ros.core import geometry as npgeo
from vode_training import geometry as g

from plane_scene import K, render

torch.set_num_threads(2)


def test_pose_vec2mat_matches_numpy():
    rng = np.random.default_rng(0)
    vecs = np.concatenate([rng.normal(0, 2, (16, 3)), rng.uniform(-1.4, 1.4, (16, 3))], axis=1)
    got = g.pose_vec2mat(torch.from_numpy(vecs)).numpy()
    want = np.stack([npgeo.pose_vec2mat(v) for v in vecs])
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_invert_se3_and_stereo_transform():
    vec = torch.tensor([[0.3, -0.2, 1.2, 0.05, -0.1, 0.2]], dtype=torch.float64)
    mat = g.pose_vec2mat(vec)
    np.testing.assert_allclose((g.invert_se3(mat) @ mat)[0].numpy(), np.eye(4), atol=1e-12)
    t_rl = g.stereo_transform(0.54, batch=2, dtype=torch.float64)
    assert t_rl.shape == (2, 4, 4)
    x_left = torch.tensor([[[1.0], [2.0], [10.0]]], dtype=torch.float64).expand(2, 3, 1)
    x_right = g.transform_points(t_rl, x_left)
    np.testing.assert_allclose(x_right[:, :, 0].numpy(), [[1.0 - 0.54, 2.0, 10.0]] * 2)


def test_backproject_project_roundtrip():
    k = torch.tensor([[[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]]])
    depth = torch.rand(1, 1, 48, 64) * 10 + 1
    pts = g.backproject(depth, torch.linalg.inv(k))
    pix, z = g.project(pts, k)
    np.testing.assert_allclose(z.reshape(1, 1, 48, 64).numpy(), depth.numpy(), rtol=1e-5)
    np.testing.assert_allclose(pix.numpy(), g.pixel_grid(48, 64)[:, :2].numpy(), atol=1e-3)


def test_identity_warp_is_exact():
    """Pixel-centre convention: the identity warp samples every pixel at its own centre."""
    img = torch.rand(2, 3, 24, 40)
    k = torch.tensor([[30.0, 0, 19.5], [0, 30.0, 11.5], [0, 0, 1]]).expand(2, 3, 3)
    warped, valid = g.inverse_warp(img, torch.full((2, 1, 24, 40), 5.0), torch.eye(4).expand(2, 4, 4), k)
    assert valid.min() == 1
    np.testing.assert_allclose(warped.numpy(), img.numpy(), atol=1e-5)


# --- a rendered scene: a textured tilted plane, exact depth (test/plane_scene.py) -------------


def _warp_error(true_vec, used_vec):
    t_src_tgt = npgeo.pose_vec2mat(true_vec)
    tgt_img, tgt_depth = render(np.eye(4))
    src_img, _ = render(t_src_tgt)
    as_t = lambda a: torch.from_numpy(a).float()[None, None]  # noqa: E731
    warped, valid = g.inverse_warp(as_t(src_img), as_t(tgt_depth),
                                   g.pose_vec2mat(torch.from_numpy(np.asarray(used_vec, dtype=np.float32)[None])),
                                   torch.from_numpy(K).float()[None])
    inner = torch.zeros_like(valid)
    inner[..., 2:-2, 2:-2] = 1
    mask = valid * inner
    err = ((warped - as_t(tgt_img)).abs() * mask).sum() / mask.sum()
    return err.item(), mask.mean().item()


TRUE_POSE = np.array([0.25, -0.05, 0.8, 0.02, -0.03, 0.01])


def test_warp_reproduces_target_at_true_pose():
    err, coverage = _warp_error(TRUE_POSE, TRUE_POSE)
    assert coverage > 0.6
    assert err < 3e-3, err   # bilinear interpolation error of the texture (~1.7e-3)


@pytest.mark.parametrize("component", [0, 2, 4])
def test_warp_error_grows_with_pose_error(component):
    errs = []
    for delta in (0.0, 0.05, 0.15, 0.4):
        used = TRUE_POSE.copy()
        used[component] += delta * (0.1 if component >= 3 else 1.0)   # rotations in 0.1 rad units
        errs.append(_warp_error(TRUE_POSE, used)[0])
    assert all(a < b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] > 10 * errs[0], errs


def test_disp_to_depth_clips():
    disp = torch.tensor([0.0, 0.01, 0.5, 20.0])
    np.testing.assert_allclose(g.disp_to_depth(disp, 0.1, 100.0).numpy(), [100.0, 100.0, 2.0, 0.1], rtol=1e-6)
