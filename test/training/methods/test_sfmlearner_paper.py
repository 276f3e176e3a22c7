"""SfMLearner as in the paper: PoseExpNet, explainability losses at exact ground truth, the paper
config (2 steps at 128x64 + ONNX export with the `confidence` output), the pair wrapper."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vode_training.config import load_config
from vode_training.losses.explainability import explainability_regulariser, explained_photometric
from vode_training.methods import build_method
from vode_training.nets.posexpnet import PoseExpNet

pytestmark = [pytest.mark.slow]

torch.set_num_threads(2)
REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "kitti_odometry_06_0000-0050"
PAPER = REPO / "config" / "train" / "sfmlearner_paper.yaml"
W, H = 128, 64


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from vode_training.data.synthetic import write_kitti_layout

    return write_kitti_layout(tmp_path_factory.mktemp("synth") / "s", frames=7, width=W, height=H, color="rgb")


def test_posexpnet_shapes_and_initial_pose():
    torch.manual_seed(0)
    net = PoseExpNet(3, 4)
    pose, masks = net(torch.randn(2, 15, 64, 128))
    assert pose.shape == (2, 4, 6) and pose.abs().max() < 0.05          # x 0.01 head: near-zero motion at start
    assert [m.shape for m in masks] == [(2, 4, 64 // 2 ** s, 128 // 2 ** s) for s in range(4)]
    assert all(((m > 0) & (m < 1)).all() for m in masks)
    odd_pose, odd_masks = net(torch.randn(1, 15, 60, 100))              # any size: decoder cropped
    assert odd_masks[0].shape == (1, 4, 60, 100) and odd_masks[3].shape == (1, 4, 8, 13)
    plain = PoseExpNet(1, 2, mask=False)
    p, m = plain(torch.randn(1, 3, 64, 128))
    assert p.shape == (1, 2, 6) and m is None and not hasattr(plain, "mask_heads")


def _paper_method(extra=()):
    cfg = load_config(PAPER, [f"data.width={W}", f"data.height={H}"] + list(extra))
    torch.manual_seed(0)
    return build_method(cfg, 3), cfg


def _batch(scene, offsets=(-2, -1, 1, 2)):
    from vode_training.data.kitti_snippets import KittiSnippets

    ds = KittiSnippets(scene, W, H, "rgb", offsets=offsets)
    items = [ds[i] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    depth = torch.stack([torch.from_numpy(np.load(scene / "depth" / f"{int(i):06d}.npy")) for i in batch["index"]])
    return batch, depth[:, None].float()


class _Fixed(nn.Module):
    """A 'net' that returns given outputs (exact ground truth) whatever its input."""

    def __init__(self, out):
        super().__init__()
        self.out = out
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.out


def _gt_loss(method, batch, depth, trans_err=0.0, mask=1.0, motion=1.0):
    from vode_ros.core.geometry import mat2pose_vec

    inv = torch.where(depth > 0, 1.0 / depth.clamp(min=1e-3), torch.full_like(depth, 1e-5))   # sky: at infinity
    disps = [inv] + [F.interpolate(inv, scale_factor=0.5 ** s, mode="area") for s in range(1, 4)]
    vec = torch.tensor(np.stack([[mat2pose_vec(m) for m in b] for b in batch["gt_src_tgt"].double().numpy()]),
                       dtype=torch.float32)                                # (B, S, 6) T_src_tgt
    vec = vec * motion
    vec[..., 2] += trans_err
    masks = [torch.full((2, 4) + d.shape[-2:], mask) for d in disps]
    method.nets["depth"] = _Fixed(disps)
    method.nets["pose"] = _Fixed((vec, masks))
    method.nets["pose"].with_mask = True
    with torch.no_grad():
        _, terms, _ = method.compute_loss(batch)
    return {k: float(v) for k, v in terms.items()}


def test_paper_losses_at_ground_truth_and_growing_with_error(scene):
    method, _ = _paper_method(["model.max_depth=100000.0"])   # lets the sky be 'infinitely' far
    batch, depth = _batch(scene)
    at_gt = _gt_loss(method, batch, depth)
    assert set(at_gt) == {"photometric", "smoothness", "explainability"}
    assert at_gt["explainability"] == 0.0                                  # mask = 1 everywhere
    # L1 at exact GT is ~1 grey level per pixel (bilinear resampling, occlusion edges) at each of
    # the 4 scales x 4 sources; it grows with a translation error, and no motion is far worse.
    errs = [_gt_loss(method, batch, depth, e)["photometric"] for e in (0.0, 0.25, 0.5, 1.0)]
    assert errs == sorted(errs) and errs[0] < 0.5 * errs[-1] and errs[0] / 16 < 0.02, errs
    # no motion at all (identity warp) is far worse than the ground truth
    assert errs[0] < 0.4 * _gt_loss(method, batch, depth, motion=0.0)["photometric"]
    # the regulariser: 0 at mask 1, grows as the mask is switched off; off pixels cost no photometric error
    reg = [_gt_loss(method, batch, depth, 0.3, m) for m in (1.0, 0.5, 0.1)]
    assert reg[0]["explainability"] == 0.0
    assert reg[1]["explainability"] == pytest.approx(0.2 * 16 * np.log(2), rel=1e-4)
    assert reg[2]["explainability"] > reg[1]["explainability"]
    assert reg[2]["photometric"] == pytest.approx(0.1 * reg[0]["photometric"], rel=1e-4)


def test_explainability_functions():
    a = torch.rand(1, 3, 8, 8)
    assert float(explained_photometric(a, a)) == 0.0
    b = (a + 0.1).clamp(0, 1)
    full = explained_photometric(b, a)
    assert float(explained_photometric(b, a, mask=torch.zeros(1, 1, 8, 8))) == 0.0
    assert float(explained_photometric(b, a, valid=torch.ones(1, 1, 8, 8))) == pytest.approx(float(full))
    assert float(explainability_regulariser(torch.ones(4))) == 0.0
    assert float(explainability_regulariser(torch.full((4,), 0.25))) == pytest.approx(np.log(4), rel=1e-5)


def test_config_checks():
    cfg = load_config(PAPER)
    assert (cfg["model"]["depth_net"], cfg["model"]["pose_net"], cfg["loss"]["style"]) == ("dispnet", "posexpnet", "sfmlearner")
    assert cfg["loss"]["explain_weight"] == 0.2 and cfg["loss"]["smooth_weight"] == 0.5
    assert cfg["train"]["lr"] == pytest.approx(2e-4) and cfg["train"]["batch_size"] == 4 and cfg["train"]["beta1"] == 0.9
    assert cfg["data"]["offsets"] == [-2, -1, 1, 2] and cfg["data"]["stereo"] is False
    with pytest.raises(ValueError, match="min_reprojection"):
        build_method(load_config(PAPER, ["loss.min_reprojection=true"]), 3)
    with pytest.raises(ValueError, match="posexpnet"):
        build_method(load_config(None, ["loss.explain_weight=0.2"]), 1)
    # without the explainability weight PoseExpNet has no mask decoder (as the TF code)
    m = build_method(load_config(PAPER, ["loss.explain_weight=0.0", "data.width=128", "data.height=64"]), 3)
    assert m.nets["pose"].with_mask is False and [t.name for t in m.terms] == ["photometric", "smoothness"]


def test_pair_wrapper_feeds_the_snippet_in_order():
    from vode_training.methods.sfmlearner import PairPoseExp

    torch.manual_seed(1)
    net = PoseExpNet(1, 4).eval()
    cur, prev = torch.randn(1, 1, 64, 128), torch.randn(1, 1, 64, 128)
    for fill, other in (("previous", prev), ("current", cur)):
        wrap = PairPoseExp(net, [-2, -1, 1, 2], 1, fill).eval()
        with torch.no_grad():
            vec, conf = wrap(torch.cat([cur, prev], 1))
            pose, masks = net(torch.cat([cur, other, prev, other, other], 1))
        assert torch.equal(vec, pose[:, 1]) and torch.equal(conf, masks[0][:, 1:2])
    with pytest.raises(ValueError, match="offset -1"):
        PairPoseExp(net, [1, 2, 3, 4], 1)


@pytest.mark.needs_data
def test_paper_config_two_steps_and_export(tmp_path):
    import onnxruntime as ort

    from vode_training.export import export_checkpoint
    from vode_training.trainer import Trainer

    cfg = load_config(PAPER, [f"data.path={DATA}", "data.width=128", "data.height=64", "train.steps=2",
                              "train.batch_size=1", "data.max_frames=6", "train.log_every=1", "train.image_every=0",
                              "train.num_threads=1"])
    summary = Trainer(cfg, tmp_path / "run", progress=False).train()
    assert len(summary["losses"]) == 2 and all(np.isfinite(summary["losses"]))
    report = export_checkpoint(summary["checkpoint"], tmp_path / "models")
    assert report["files"]["depth"]["parity_max_abs"] <= 1e-4 and report["files"]["pose"]["parity_max_abs"] <= 1e-5
    sess = ort.InferenceSession(str(tmp_path / "models" / "pose.onnx"), providers=["CPUExecutionProvider"])
    assert [(o.name, o.shape) for o in sess.get_outputs()] == [("pose", [1, 6]), ("confidence", [1, 1, 64, 128])]
    pose, conf = sess.run(None, {"frames": np.zeros((1, 6, 64, 128), np.float32)})
    assert pose.shape == (1, 6) and ((conf > 0) & (conf < 1)).all()
    from vode_ros.runtime.inference import OnnxModel, PoseNet

    model = OnnxModel(tmp_path / "models" / "pose.onnx", expected_kind="pose")
    t = PoseNet(model)(np.zeros((3, 64, 128), np.float32), np.zeros((3, 64, 128), np.float32))
    assert t.shape == (4, 4)
