"""Losses are ~0 at the ground truth and grow with the error."""
import numpy as np
import pytest
import torch

from vode_training.losses.photometric import SSIM, box_mean3, masked_mean, photometric_error, reprojection_loss
from vode_training.losses.smoothness import edge_aware_smoothness, second_order_smoothness

torch.set_num_threads(2)


def _image(seed=0, shape=(2, 1, 32, 48)):
    gen = torch.Generator().manual_seed(seed)
    img = torch.rand(shape, generator=gen)
    return torch.nn.functional.avg_pool2d(img, 3, 1, 1).clamp(0, 1)   # a little texture


@pytest.mark.parametrize("kind", ["l1", "ssim_l1"])
def test_photometric_zero_at_truth_and_grows(kind):
    img = _image()
    assert photometric_error(img, img, kind).abs().max() < 1e-6
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(img.shape, generator=gen)
    errs = [photometric_error((img + a * noise).clamp(0, 1), img, kind).mean().item() for a in (0.01, 0.05, 0.2)]
    assert 0 < errs[0] < errs[1] < errs[2]
    assert photometric_error(img, img, kind).shape == (2, 1, 32, 48)


def test_box_mean_is_avg_pool_3x3_forward_and_backward():
    """box_mean3 (the fast 3x3 window mean) | the numbers and the gradients of avg_pool2d(3, stride 1)"""
    x = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(3), requires_grad=True)
    w = torch.rand(2, 3, 15, 21, generator=torch.Generator().manual_seed(4))
    ours = box_mean3(x)
    ref = torch.nn.functional.avg_pool2d(x, 3, 1)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-6)
    (g_ours,) = torch.autograd.grad((ours * w).sum(), x)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), x)
    torch.testing.assert_close(g_ours, g_ref, atol=1e-6, rtol=1e-6)


def test_ssim_matches_the_pooling_formulation():
    """SSIM on shifted-slice window means | monodepth2's SSIM (ReflectionPad2d + AvgPool2d(3, 1)) to 1e-10 in
    float64 (in float32 the two summation orders differ by ~5e-5 where a window's variance is ~0)"""
    pool, pad = torch.nn.AvgPool2d(3, 1), torch.nn.ReflectionPad2d(1)
    x, y = _image(5, (2, 3, 24, 40)).double(), _image(6, (2, 3, 24, 40)).double()
    xp, yp = pad(x), pad(y)
    mu_x, mu_y = pool(xp), pool(yp)
    sx, sy, sxy = pool(xp * xp) - mu_x ** 2, pool(yp * yp) - mu_y ** 2, pool(xp * yp) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ref = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sx + sy + c2))).clamp(-1, 1)
    torch.testing.assert_close(SSIM()(x, y), ref, atol=1e-10, rtol=0)


def test_photometric_rejects_unknown_kind():
    with pytest.raises(ValueError, match="ssim_l1"):
        photometric_error(_image(), _image(), "l2")


def test_masked_mean_ignores_masked_pixels():
    err = torch.zeros(1, 1, 4, 4)
    err[..., :2] = 100.0
    mask = torch.zeros_like(err)
    mask[..., 2:] = 1
    assert masked_mean(err, mask).item() == pytest.approx(0.0)
    assert masked_mean(err, None).item() == pytest.approx(50.0)


def test_reprojection_min_picks_the_good_source():
    img = _image()
    good = photometric_error(img, img)
    bad = photometric_error(_image(5), img)
    assert reprojection_loss([bad, good], min_over_sources=True).item() < 1e-6
    assert reprojection_loss([bad, good], min_over_sources=False).item() > 0.01
    # an invalid (out of view) good source is not used
    masks = [torch.ones_like(good), torch.zeros_like(good)]
    assert reprojection_loss([bad, good], masks).item() == pytest.approx(bad.mean().item(), rel=1e-5)


def test_automask_ignores_pixels_where_identity_is_better():
    img = _image()
    warped_err = photometric_error(_image(3), img)
    identity_err = photometric_error(img, img)          # static scene: no warp needed
    assert reprojection_loss([warped_err], identity_errors=[identity_err]).item() == pytest.approx(0.0, abs=1e-6)


def test_smoothness_zero_for_smooth_inverse_depth_and_grows_with_noise():
    img = _image()
    const = torch.full((2, 1, 32, 48), 0.2)
    ramp = torch.linspace(0.05, 0.5, 32).view(1, 1, 32, 1).expand(2, 1, 32, 48).contiguous()
    assert edge_aware_smoothness(const, img).item() < 1e-7
    assert second_order_smoothness(const).item() < 1e-7
    assert second_order_smoothness(ramp).item() < 1e-6        # planes cost nothing in 2nd order
    assert edge_aware_smoothness(ramp, img).item() > 0         # ... but do in first order
    gen = torch.Generator().manual_seed(2)
    noise = torch.rand(const.shape, generator=gen)
    for loss in (lambda d: edge_aware_smoothness(d, img), second_order_smoothness):
        vals = [loss(const + a * noise).item() for a in (0.001, 0.01, 0.1)]
        assert vals[0] < vals[1] < vals[2]


def test_edge_aware_smoothness_is_scale_invariant_and_edge_weighted():
    img = _image()
    disp = 0.1 + 0.05 * _image(7)
    a = edge_aware_smoothness(disp, img).item()
    assert edge_aware_smoothness(3 * disp, img).item() == pytest.approx(a, rel=1e-5)  # mean-normalised
    edges = torch.zeros_like(img)
    edges[..., ::2] = 1.0                                       # strong image gradients everywhere
    assert edge_aware_smoothness(disp, edges).item() < a


def test_losses_are_differentiable():
    disp = (0.1 + 0.05 * _image(7)).requires_grad_()
    img = _image()
    (photometric_error(img * disp / disp.mean(), img).mean() + edge_aware_smoothness(disp, img)
     + second_order_smoothness(disp)).backward()
    assert disp.grad is not None and torch.isfinite(disp.grad).all()
    assert np.abs(disp.grad.numpy()).sum() > 0


# --- the whole SfMLearner loss on a rendered scene: ~0 with the true depth and poses -----------

class _FixedDepth(torch.nn.Module):
    def __init__(self, inv_depth):
        super().__init__()
        self.inv_depth = inv_depth

    def forward(self, image):
        return [self.inv_depth]


class _FixedPose(torch.nn.Module):
    def __init__(self, vecs):
        super().__init__()
        self.vecs = vecs

    def forward(self, frames):
        return self.vecs


def _sfm_terms(tz_error=0.0, baseline_error=0.0):
    from plane_scene import K, render   # the analytic textured-plane renderer

    from vode_ros.core import geometry as npgeo
    from vode_training.config import load_config
    from vode_training.geometry import stereo_transform
    from vode_training.methods import build_method

    t_prev = np.array([0.02, -0.01, 0.3, 0.01, -0.02, 0.005])    # T_{t-1,t}: target 0.3 m ahead
    t_next = np.array([-0.03, 0.01, -0.3, -0.01, 0.015, 0.0])    # T_{t+1,t}
    baseline = 0.5
    tgt, depth = render(np.eye(4))
    prev, _ = render(npgeo.pose_vec2mat(t_prev))
    nxt, _ = render(npgeo.pose_vec2mat(t_next))
    right, _ = render(stereo_transform(baseline, dtype=torch.float64)[0].numpy())
    as_t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
    batch = {"tgt": as_t(tgt)[None, None], "src": as_t(np.stack([prev, nxt]))[None, :, None],
             "right": as_t(right)[None, None], "K": as_t(K)[None], "baseline": torch.tensor([baseline + baseline_error])}
    batch["tgt_in"], batch["src_in"] = batch["tgt"], batch["src"]
    cfg = load_config(None, ["model.num_scales=1", "loss.stereo_in_min=false"])
    method = build_method(cfg, channels=1)
    # The pose net sees [later, earlier]: for the future source it must output T_{t,t+1}.
    used_prev = t_prev + np.array([0, 0, tz_error, 0, 0, 0])
    nets_out = np.stack([used_prev, npgeo.mat2pose_vec(npgeo.invert_se3(npgeo.pose_vec2mat(t_next)))])
    method.nets["depth"] = _FixedDepth(as_t(1.0 / depth)[None, None])
    method.nets["pose"] = _FixedPose(as_t(nets_out))
    _, terms, _ = method.compute_loss(batch)
    return {k: v.item() for k, v in terms.items()}


def test_sfmlearner_photometric_terms_vanish_at_ground_truth():
    exact = _sfm_terms()
    assert exact["photometric_temporal"] < 2e-3 and exact["photometric_stereo"] < 2e-3, exact
    wrong_pose = _sfm_terms(tz_error=0.1)
    wrong_baseline = _sfm_terms(baseline_error=0.1)
    assert wrong_pose["photometric_temporal"] > 5 * exact["photometric_temporal"], (exact, wrong_pose)
    assert wrong_baseline["photometric_stereo"] > 5 * exact["photometric_stereo"], (exact, wrong_baseline)
