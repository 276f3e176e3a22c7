"""Deep-VO-Feat: se(3) exponential map, feature reconstruction at exact ground truth, the whole
method's terms on a rendered scene, and 2 training steps + ONNX export of the shipped config."""

import numpy as np
import pytest
import torch

from vode_ros.core import geometry as npgeo
from vode_training.geometry import pose_vec2mat, stereo_transform
from vode_training.losses.feature_reconstruction import (FixedRandomFeatures, encoder_features,
                                                         feature_reconstruction_loss)
from vode_training.geometry import mat2euler, mat2pose_vec, se3_exp, se3_to_pose_vec, skew, so3_exp

pytestmark = [pytest.mark.slow]

torch.set_num_threads(2)


def as_t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float32))


# --- se(3) ---------------------------------------------------------------------------------------

def test_se3_exp_equals_matrix_exponential():
    gen = torch.Generator().manual_seed(0)
    xi = torch.randn(16, 6, generator=gen, dtype=torch.float64)
    xi[:3, 3:] *= 1e-6                      # Taylor branch
    xi[3, 3:] = 0.0
    xi[4:8, 3:] *= 2.0                      # large angles
    twist = torch.zeros(16, 4, 4, dtype=torch.float64)
    twist[:, :3, :3] = skew(xi[:, 3:])
    twist[:, :3, 3] = xi[:, :3]
    np.testing.assert_allclose(se3_exp(xi).numpy(), torch.linalg.matrix_exp(twist).numpy(), atol=1e-12)
    np.testing.assert_allclose(so3_exp(xi[:, 3:]).numpy(), se3_exp(xi)[:, :3, :3].numpy(), atol=1e-14)
    # pure translation twist -> translation; axis-angle about z -> yaw
    assert torch.allclose(se3_exp(torch.tensor([[1.0, 2.0, 3.0, 0, 0, 0]]))[0, :3, 3], torch.tensor([1.0, 2, 3]))
    assert torch.allclose(se3_to_pose_vec(torch.tensor([[0, 0, 0, 0, 0, 0.3]])), torch.tensor([[0, 0, 0, 0, 0, 0.3]]))


def test_se3_gradients_finite_at_zero():
    xi = torch.zeros(2, 6, requires_grad=True)
    (se3_exp(xi) * torch.randn(2, 4, 4)).sum().backward()
    assert torch.isfinite(xi.grad).all() and xi.grad[:, 3:].abs().sum() > 0


def test_mat2euler_inverts_euler2mat_and_matches_numpy():
    rng = np.random.default_rng(1)
    vecs = np.concatenate([rng.normal(0, 2, (32, 3)), rng.uniform(-1.4, 1.4, (32, 3))], axis=1)
    mats = pose_vec2mat(torch.from_numpy(vecs))
    np.testing.assert_allclose(mat2pose_vec(mats).numpy(), vecs, atol=1e-10)
    np.testing.assert_allclose(mat2euler(mats[:, :3, :3]).numpy(),
                               np.stack([npgeo.mat2euler(m[:3, :3]) for m in mats.numpy()]), atol=1e-12)


# --- feature reconstruction ----------------------------------------------------------------------

def test_random_features_are_fixed_unit_norm_and_gain_invariant():
    a, b = FixedRandomFeatures(1, 16, seed=3), FixedRandomFeatures(1, 16, seed=3)
    x = torch.randn(2, 1, 32, 48)
    fa = a(x)
    assert fa.shape == (2, 16, 32, 48)
    assert torch.equal(fa, b(x))                                        # the seed rebuilds it
    assert not any(p.requires_grad for p in a.parameters())
    np.testing.assert_allclose(fa.norm(dim=1).numpy(), 1.0, atol=1e-4)
    assert torch.allclose(a(2.5 * x), fa, atol=1e-5)                     # local gain removed
    assert not torch.allclose(FixedRandomFeatures(1, 16, seed=4)(x), fa)


def _street():
    from vode_training.data.synthetic import generate_sequence

    seq = generate_sequence(frames=2, width=192, height=64, seed=2)
    norm = lambda img: ((as_t(img) / 255.0 - 0.45) / 0.225)[None, None]   # noqa: E731
    depth = as_t(seq.depth[1])[None, None]
    mask = (depth > 0).float()                                           # the sky has no depth
    return seq, norm, depth.clamp(min=1.0), mask


@pytest.mark.parametrize("feature", ["random", "depth_encoder"])
def test_feature_reconstruction_minimal_at_truth_and_grows(feature):
    from vode_training.nets.depth_net import DepthNet

    seq, norm, depth, mask = _street()
    torch.manual_seed(0)
    net = DepthNet(1)
    fn = FixedRandomFeatures(1, 16) if feature == "random" else (lambda x: encoder_features(net, x, 2))
    f_tgt, f_src, f_right = fn(norm(seq.left[1])), fn(norm(seq.left[0])), fn(norm(seq.right[1]))
    kk = as_t(seq.k)[None]
    mat = as_t(seq.relative(1, 0))[None]
    errs = []
    for dz in (0.0, 0.1, 0.3, 0.8):
        wrong = mat.clone()
        wrong[0, 2, 3] += dz
        errs.append(feature_reconstruction_loss(f_src, f_tgt, depth, wrong, kk, mask, margin=4).item())
    assert all(a < b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] > 1.2 * errs[0], errs
    stereo = [feature_reconstruction_loss(f_right, f_tgt, depth, stereo_transform(seq.baseline + e), kk, mask,
                                          margin=4).item()
              for e in (0.0, 0.1, 0.3)]
    assert stereo[0] < stereo[1] < stereo[2], stereo
    # identical views, identity warp: exactly zero
    assert feature_reconstruction_loss(f_tgt, f_tgt, depth, torch.eye(4)[None], kk).item() < 1e-6


# --- the whole method on the rendered plane ------------------------------------------------------

XI_PREV = np.array([0.02, -0.01, 0.3, 0.01, -0.02, 0.005])   # twist of T_{t-1,t}
XI_NEXT = np.array([-0.03, 0.01, -0.3, -0.01, 0.015, 0.0])   # twist of T_{t+1,t}
BASELINE = 0.5


class _FixedDepth(torch.nn.Module):
    def __init__(self, inv_depth):
        super().__init__()
        self.inv_depth = inv_depth

    def forward(self, image):
        return [self.inv_depth.expand(image.shape[0], -1, -1, -1)]


class _FixedTwist(torch.nn.Module):
    def __init__(self, xi):
        super().__init__()
        self.xi = xi

    def forward(self, frames):
        return self.xi


def _deep_vo_feat_terms(tz_error=0.0, baseline_error=0.0):
    from plane_scene import K, render   # the analytic textured-plane renderer

    from vode_training.config import load_config
    from vode_training.methods import build_method

    to_mat = lambda xi: se3_exp(torch.from_numpy(xi)[None])[0].numpy()   # noqa: E731
    tgt, depth = render(np.eye(4))
    prev, _ = render(to_mat(XI_PREV))
    nxt, _ = render(to_mat(XI_NEXT))
    right, _ = render(stereo_transform(BASELINE, dtype=torch.float64)[0].numpy())
    batch = {"tgt": as_t(tgt)[None, None], "src": as_t(np.stack([prev, nxt]))[None, :, None],
             "right": as_t(right)[None, None], "K": as_t(K)[None],
             "baseline": torch.tensor([BASELINE + baseline_error])}
    batch["tgt_in"], batch["src_in"] = batch["tgt"], batch["src"]
    cfg = load_config(None, ["method=deep_vo_feat", "model.num_scales=1", "loss.smooth_weight=0.0"])
    method = build_method(cfg, channels=1)
    method.nets["depth"] = _FixedDepth(as_t(1.0 / depth)[None, None])
    # [later, earlier] input: the future source's twist is that of T_{t,t+1} = exp(-xi_next)
    method.nets["pose"] = _FixedTwist(as_t(np.stack([XI_PREV + np.array([0, 0, tz_error, 0, 0, 0]), -XI_NEXT])))
    _, terms, metrics = method.compute_loss(batch)
    assert np.isfinite(list(metrics.values())).all()
    return {key: val.item() for key, val in terms.items()}


def test_deep_vo_feat_terms_vanish_at_ground_truth():
    exact = _deep_vo_feat_terms()
    assert set(exact) == {"image_temporal", "image_stereo", "feature_temporal", "feature_stereo", "smoothness"}
    assert exact["image_temporal"] < 3e-3 and exact["image_stereo"] < 3e-3, exact
    # features: perspective changes the texture's scale between views, so they match less exactly
    assert exact["feature_temporal"] < 0.5 * 0.015 and exact["feature_stereo"] < 0.5 * 0.015, exact
    wrong_pose = _deep_vo_feat_terms(tz_error=0.1)
    assert wrong_pose["image_temporal"] > 3 * exact["image_temporal"], (exact, wrong_pose)
    assert wrong_pose["feature_temporal"] > 1.5 * exact["feature_temporal"], (exact, wrong_pose)
    assert wrong_pose["image_stereo"] == pytest.approx(exact["image_stereo"], rel=1e-5)
    wrong_baseline = _deep_vo_feat_terms(baseline_error=0.1)
    assert wrong_baseline["image_stereo"] > 3 * exact["image_stereo"], (exact, wrong_baseline)
    assert wrong_baseline["feature_stereo"] > 1.5 * exact["feature_stereo"], (exact, wrong_baseline)


def test_depth_encoder_features_need_an_encoder():
    from vode_training.config import load_config
    from vode_training.methods import build_method

    cfg = load_config(None, ["method=deep_vo_feat", "loss.feature=depth_encoder", "data.width=128", "data.height=64"])
    method = build_method(cfg, channels=1)
    feats = method.features(torch.rand(2, 1, 64, 128))
    assert feats.shape[:2] == (2, 32) and feats.shape[-2:] == (64, 128)   # 2nd stage of the small net
    with pytest.raises(ValueError, match="encoder"):
        build_method(load_config(None, ["method=deep_vo_feat", "loss.feature=depth_encoder",
                                        "model.depth_net=dispnet"]), channels=1)
    with pytest.raises(ValueError, match="random"):
        build_method(load_config(None, ["method=deep_vo_feat", "loss.feature=sift"]), channels=1)


# --- 2 training steps of the shipped config + export ----------------------------------------------


@pytest.mark.needs_stereo_data
def test_config_trains_two_steps_and_exports(tmp_path, repo_dir, kitti_dir, tiny_train):
    import onnxruntime as ort

    from vode_ros.cli.main import main
    from vode_ros.runtime.inference import load_models
    from vode_training.checkpoint import load_checkpoint, method_from_checkpoint

    run = tmp_path / "run"
    config = repo_dir / "config" / "train" / "deep_vo_feat.yaml"
    argv = ["train", "--config", str(config), "--out", str(run), "--no-progress"]
    for item in tiny_train:
        argv += ["--set", item]
    assert main(argv) == 0
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["method"] == "deep_vo_feat" and ckpt["step"] == 2 and set(ckpt["models"]) == {"depth", "pose"}
    models = tmp_path / "models"
    assert main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(models)]) == 0  # parity-checked
    depth_model, pose_model = load_models(models, ["CPUExecutionProvider"], threads=2)
    assert pose_model.meta.method == "deep_vo_feat" and pose_model.meta.metric_scale
    # pose.onnx outputs [t, euler] of exp(twist of the odometry net)
    method = method_from_checkpoint(ckpt)
    frames = torch.randn(1, 2, 64, 128)
    sess = ort.InferenceSession(str(models / "pose.onnx"), providers=["CPUExecutionProvider"])
    (vec,) = sess.run(None, {"frames": frames.numpy()})
    with torch.no_grad():
        mat = se3_exp(method.nets["pose"](frames))
    np.testing.assert_allclose(npgeo.pose_vec2mat(vec[0]), mat[0].numpy(), atol=1e-5)
