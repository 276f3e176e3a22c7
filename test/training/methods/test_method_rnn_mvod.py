"""RNN-MVOD: ConvLSTM and recurrent nets, loss terms at exact ground truth (synthetic scenes),
the small-baseline filter, ground-truth depth batches, 2 training steps of both stage configs and
of the supervised variant, ONNX export with the recurrent state."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vode_training.config import load_config
from vode_training.data.kitti_snippets import KittiSnippets
from vode_training.methods import build_method
from vode_training.geometry import rigid_pixels, sample_pixels
from vode_training.methods.rnn_mvod import depth_grad_similarity, depth_l1_rel
from vode_training.nets.convlstm import ConvLSTMCell
from vode_training.nets.rnn_mvod_nets import RecurrentDepthNet, RecurrentPoseNet
from vode_ros.core.geometry import invert_se3, mat2pose_vec

pytestmark = [pytest.mark.slow]

torch.set_num_threads(1)   # 2 threads on shared, busy cores run ~10x slower (OpenMP spinning)
ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data" / "kitti_odometry_06_0000-0050"
STAGE1 = ROOT / "config" / "train" / "rnn_mvod.yaml"
STAGE2 = ROOT / "config" / "train" / "rnn_mvod_stage2.yaml"
TINY_NETS = ["model.depth_enc_channels=[8, 8, 16, 16, 16]", "model.depth_dec_channels=[8, 8, 8, 16, 16]",
             "model.pose_channels=[8, 8, 16, 16, 16, 16]"]
TINY = ["data.width=128", "data.height=64", "data.max_frames=8", "train.batch_size=1", "train.steps=2",
        "train.log_every=1", "train.ckpt_every=2", "train.num_threads=1"] + TINY_NETS


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from vode_training.data.synthetic import write_kitti_layout

    root = tmp_path_factory.mktemp("synth")
    return write_kitti_layout(root / "street", frames=6, width=128, height=64, seed=3)


def _method(path, n_frames=3, extra=()):
    cfg = load_config(None, ["method=rnn_mvod", f"data.path={path}", "data.width=128", "data.height=64",
                             "data.stereo=false", "data.augment=false", f"data.offsets={list(range(1, n_frames))}",
                             "model.num_scales=1"] + TINY_NETS + list(extra))
    return build_method(cfg, 1), cfg


def _batch(path, n_frames=3):
    ds = KittiSnippets(path, 128, 64, "gray", offsets=tuple(range(1, n_frames)))
    return next(iter(DataLoader(ds, batch_size=2, shuffle=False)))


def _gt_inputs(method, batch, synth_root, pose_noise=None, depth_factor=1.0, backward_pose_noise=None):
    """Ground-truth inverse depths and chained poses in the layout of method.unroll's output."""
    from vode_training.data.with_depth import FrameDepths, add_gt_depth

    seq_in, seq, k = method.sequences(batch)
    rows, n = seq.shape[:2]
    b = batch["tgt"].shape[0]
    gt = add_gt_depth(batch, FrameDepths(synth_root, 128, 64), method.offsets)["gt_depth"]      # (B, N, 1, H, W)
    gt = torch.cat([gt, gt.flip(1)], 0) * depth_factor
    disp = torch.where(gt > 0, 1.0 / gt.clamp(min=1e-6), torch.full_like(gt, 1.0 / method.max_depth))
    disps = [[disp[:, t]] for t in range(n)]
    poses_w = np.loadtxt(Path(synth_root) / "poses.txt").reshape(-1, 3, 4)
    world = np.tile(np.eye(4), (len(poses_w), 1, 1))
    world[:, :3, :] = poses_w
    vecs = np.zeros((rows, n, 6), np.float32)
    for r in range(rows):
        t0 = int(batch["index"][r % b])
        times = [t0 + j for j in range(n)]
        if r >= b:
            times = times[::-1]
        for j in range(1, n):
            vecs[r, j] = mat2pose_vec(invert_se3(world[times[j - 1]]) @ world[times[j]])
    poses = torch.from_numpy(vecs)
    if pose_noise is not None:
        poses = poses + torch.tensor(pose_noise, dtype=torch.float32)
    if backward_pose_noise is not None:
        poses[b:] = poses[b:] + torch.tensor(backward_pose_noise, dtype=torch.float32)
    return method.assemble(batch, seq, k, disps, poses), gt


# --------------------------------------------------------------------------- nets

def test_convlstm_cell_state():
    torch.manual_seed(0)
    cell = ConvLSTMCell(3, 5)
    x = torch.randn(2, 3, 8, 10)
    h, c = cell(x)
    assert h.shape == c.shape == (2, 5, 8, 10)
    h0, c0 = cell.zero_state(x)
    assert torch.equal(cell(x, (h0, c0))[0], h) and (h.abs() < 1).all()
    h2, c2 = cell(x, (h, c))
    assert not torch.allclose(h2, h)                       # the state matters
    assert torch.all(cell.gates.bias[5:10] == 1.0)          # forget-gate bias


def test_recurrent_nets_state_shapes_and_memory():
    torch.manual_seed(0)
    depth = RecurrentDepthNet(1, (8, 8, 16, 16, 16), (8, 8, 8, 16, 16), 4, 0.1, 100.0, 10.0, lstm_stages=(1, 4))
    pose = RecurrentPoseNet(2, (8, 8, 16, 16, 16, 16), lstm_stages=(0, 5))
    x = torch.randn(1, 1, 64, 128)
    disps, state = depth(x)
    assert [d.shape[-1] for d in disps] == [128, 64, 32, 16]
    assert [tuple(s.shape) for s in state] == depth.state_shapes(64, 128)
    disps2, _ = depth(x, state)
    assert not torch.allclose(disps2[0], disps[0])
    p, pstate = pose(torch.cat([x, disps[0]], 1))
    assert p.shape == (1, 6) and [tuple(s.shape) for s in pstate] == pose.state_shapes(64, 128)
    p2, _ = pose(torch.cat([x, disps[0]], 1), pstate)
    assert not torch.allclose(p, p2)
    with pytest.raises(ValueError, match="lstm_stages"):
        RecurrentPoseNet(2, (8, 8), lstm_stages=(3,))


def test_offsets_must_form_a_forward_subset():
    with pytest.raises(ValueError, match="strictly increasing"):
        _method(DATA, extra=["data.offsets=[-1, 1]"])


# --------------------------------------------------------------------------- geometry

def test_rigid_pixels_and_sample_match_inverse_warp():
    from vode_training.geometry import inverse_warp, pose_vec2mat

    torch.manual_seed(0)
    img = torch.rand(2, 1, 16, 24)
    depth = 2 + torch.rand(2, 1, 16, 24) * 5
    t = pose_vec2mat(torch.tensor([[0.1, 0.0, 0.3, 0.01, 0.02, 0.0], [0.0, 0.05, -0.2, 0.0, -0.01, 0.02]]))
    k = torch.tensor([[20.0, 0, 11.5], [0, 20.0, 7.5], [0, 0, 1]]).expand(2, 3, 3)
    pix, valid = rigid_pixels(depth, t, k)
    ref, ref_valid = inverse_warp(img, depth, t, k)
    assert torch.allclose(sample_pixels(img, pix), ref, atol=1e-6) and torch.equal(valid, ref_valid)


# --------------------------------------------------------------------------- loss terms at ground truth

def _plane_terms(tz_error=0.0, backward_error=0.0):
    """All RNN-MVOD terms on an exactly rendered textured plane (test_training_geometry.render), a
    3-frame subset with ground-truth depths and poses fed in place of the nets."""
    from plane_scene import K, render   # the analytic textured-plane renderer

    from vode_ros.core import geometry as npgeo

    world = [np.eye(4), npgeo.pose_vec2mat(np.array([0.02, -0.01, 0.3, 0.01, -0.02, 0.005])),
             npgeo.pose_vec2mat(np.array([0.05, 0.0, 0.55, 0.0, -0.03, 0.01]))]   # W_k: frame k in frame 0
    views = [render(invert_se3(w)) for w in world]
    as_t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
    imgs = as_t(np.stack([v[0] for v in views]))[:, None]                    # (3, 1, H, W)
    h, w = imgs.shape[-2:]
    batch = {"tgt": imgs[0][None], "src": imgs[1:][None], "K": as_t(K)[None],
             "gt_src_tgt": as_t(np.stack([invert_se3(x) for x in world[1:]]))[None],
             "index": torch.tensor([0]), "stride": torch.tensor([1])}
    batch["tgt_in"], batch["src_in"] = batch["tgt"], batch["src"]
    cfg = load_config(None, ["method=rnn_mvod", f"data.width={w}", f"data.height={h}", "data.stereo=false",
                             "data.offsets=[1, 2]", "model.num_scales=1",
                             "loss.min_baseline=0.0"] + TINY_NETS)
    method = build_method(cfg, 1)
    seq_in, seq, k = method.sequences(batch)
    order = [[0, 1, 2], [2, 1, 0]]                                             # forward, backward pass
    disps = [[as_t(np.stack([1.0 / views[order[r][j]][1] for r in range(2)]))[:, None]] for j in range(3)]
    vecs = np.zeros((2, 3, 6), np.float32)
    for r in range(2):
        for j in range(1, 3):
            a, b_ = order[r][j - 1], order[r][j]
            vecs[r, j] = npgeo.mat2pose_vec(invert_se3(world[a]) @ world[b_])
    vecs[:, 1:, 2] += tz_error
    vecs[1, 1:, 0] += backward_error
    out = method.assemble(batch, seq, k, disps, torch.from_numpy(vecs))
    inner = torch.zeros(1, 1, h, w)
    inner[..., 2:-2, 2:-2] = 1                                                 # as test_training_geometry
    out["valid"] = {key: [v * inner for v in vs] for key, vs in out["valid"].items()}
    return {t.name: t.compute(out, batch).item() for t in method.terms}


def test_terms_vanish_on_exact_plane_scene():
    exact = _plane_terms()
    assert exact["photometric"] < 3e-3 and exact["fb_flow"] < 1e-3, exact
    wrong_pose = _plane_terms(tz_error=0.1)
    inconsistent = _plane_terms(backward_error=0.05)
    assert wrong_pose["photometric"] > 5 * exact["photometric"], (exact, wrong_pose)
    assert inconsistent["fb_flow"] > 0.3 and inconsistent["fb_flow"] > 100 * exact["fb_flow"], inconsistent


def test_multiview_photometric_small_at_gt_and_grows(synth):
    method, _ = _method(synth, n_frames=4)
    batch = _batch(synth, n_frames=4)
    term = next(t for t in method.terms if t.name == "photometric")
    at_gt = term.compute(_gt_inputs(method, batch, synth)[0], batch).item()
    pose_err = term.compute(_gt_inputs(method, batch, synth, pose_noise=[0.3, 0, 0.3, 0, 0.01, 0])[0], batch).item()
    depth_err = term.compute(_gt_inputs(method, batch, synth, depth_factor=0.5)[0], batch).item()
    assert at_gt < 0.06, at_gt
    assert pose_err > 1.5 * at_gt and depth_err > 1.5 * at_gt, (at_gt, pose_err, depth_err)
    # all 4 * 3 ordered pairs of the subset are used
    assert sum(len(v) for v in _gt_inputs(method, batch, synth)[0]["pairs"].values()) == 12


def test_fb_flow_zero_at_gt_and_grows_with_inconsistency(synth):
    method, _ = _method(synth, n_frames=3)
    batch = _batch(synth, n_frames=3)
    term = next(t for t in method.terms if t.name == "fb_flow")
    at_gt = term.compute(_gt_inputs(method, batch, synth)[0], batch).item()
    # a consistent error (both passes) is not an fb inconsistency; one pass off is
    off = term.compute(_gt_inputs(method, batch, synth, backward_pose_noise=[0.2, 0, 0.2, 0, 0.01, 0])[0],
                       batch).item()
    more = term.compute(_gt_inputs(method, batch, synth, backward_pose_noise=[0.6, 0, 0.6, 0, 0.03, 0])[0],
                        batch).item()
    assert at_gt < 0.1, at_gt                      # pixels (only flow interpolation at depth edges)
    assert off > 5 * at_gt + 0.2 and more > 2 * off, (at_gt, off, more)


def test_supervised_terms_zero_at_gt_and_grow(synth):
    torch.manual_seed(0)
    gt = torch.from_numpy(np.load(Path(synth) / "depth" / "000002.npy"))[None, None]
    gt = torch.nn.functional.interpolate(gt, size=(64, 128), mode="nearest")
    pred = gt.clamp(min=0.1, max=100.0)
    assert depth_l1_rel(pred, gt).item() < 1e-4          # ~1e-5: a few GT depths beyond max_depth
    assert depth_grad_similarity(pred, gt).item() < 1e-4
    assert depth_l1_rel(pred * 1.2, gt).item() == pytest.approx(0.2, abs=1e-3)
    assert depth_l1_rel(pred * 1.5, gt).item() > depth_l1_rel(pred * 1.2, gt).item()
    noisy = [pred * (1 + s * torch.randn_like(pred)).clamp(min=0.1) for s in (0.05, 0.3)]
    g = [depth_grad_similarity(x, gt).item() for x in noisy]
    assert 0.01 < g[0] < g[1], g
    assert depth_grad_similarity(pred * 2.0, gt).item() < 1e-4          # direction only: scale-free


def test_smoothness_term_wired(synth):
    method, _ = _method(synth, n_frames=2)
    batch = _batch(synth, n_frames=2)
    out, _ = _gt_inputs(method, batch, synth)
    term = next(t for t in method.terms if t.name == "smoothness")
    flat = dict(out, disps=[torch.full_like(out["disps"][0], 0.1)])
    noisy = dict(out, disps=[0.1 + 0.05 * torch.rand_like(out["disps"][0])])
    assert term.compute(flat, batch).item() < 1e-7 < term.compute(noisy, batch).item()


def test_small_baseline_pairs_are_dropped(tmp_path):
    from vode_training.data.synthetic import write_kitti_layout

    slow = write_kitti_layout(tmp_path / "slow", frames=5, width=128, height=64, speed=0.2, seed=1)
    method, _ = _method(slow, n_frames=3)
    batch = _batch(slow, n_frames=3)
    out, _ = _gt_inputs(method, batch, slow)
    dist = out["distances"]
    assert dist[0, 0, 1].item() == pytest.approx(0.2, abs=0.02)
    for (a, b_), mask in out["pair_mask"].items():
        want = 1.0 if abs(a - b_) == 2 else 0.0             # 0.2 m apart: dropped, 0.4 m: kept
        assert torch.all(mask == want), (a, b_, mask.flatten())
    assert method.metrics(out, batch)["data/pairs_below_min_baseline"] == pytest.approx(4 / 6)
    method_off, _ = _method(slow, n_frames=3, extra=["loss.min_baseline=0.0"])
    out_off, _ = _gt_inputs(method_off, batch, slow)
    assert all(torch.all(m == 1) for m in out_off["pair_mask"].values())


def test_gt_depth_batches(synth):
    from vode_training.data.with_depth import WithDepth

    ds = WithDepth(KittiSnippets(synth, 64, 32, "gray", offsets=(1, 2)))
    item = ds[1]
    assert item["gt_depth"].shape == (3, 1, 32, 64)
    full = np.load(Path(synth) / "depth" / "000002.npy")
    assert item["gt_depth"][1].max().item() == pytest.approx(float(full.max()), rel=0.2)
    if DATA.is_dir():                                   # the KITTI clip has no depth/*.npy
        with pytest.raises(FileNotFoundError, match="depth"):
            WithDepth(KittiSnippets(DATA, 64, 32, "gray", offsets=(1,), max_frames=3))


# --------------------------------------------------------------------------- training + export

def _train_and_export(cfg, out):
    from vode_training.export import export_checkpoint
    from vode_training.trainer import Trainer

    summary = Trainer(cfg, out, progress=False).train()
    assert math.isfinite(summary["final_loss"]) and summary["final_loss"] > 0
    report = export_checkpoint(summary["checkpoint"], out / "models")
    assert report["files"]["depth"]["parity_max_abs"] <= 1e-4
    assert report["files"]["pose"]["parity_max_abs"] <= 1e-5
    return summary, report


@pytest.mark.needs_data
def test_two_stages_train_and_export(tmp_path):
    import onnx

    cfg1 = load_config(STAGE1, TINY + [f"data.path={DATA}"])
    assert cfg1["method"] == "rnn_mvod" and cfg1["data"]["offsets"] == [1]
    s1, _ = _train_and_export(cfg1, tmp_path / "stage1")
    cfg2 = load_config(STAGE2, TINY + [f"data.path={DATA}", f"train.init={s1['checkpoint']}"])
    assert cfg2["data"]["offsets"] == [1, 2, 3, 4]
    _, report = _train_and_export(cfg2, tmp_path / "stage2")
    for kind in ("depth", "pose"):
        model = onnx.load(report["files"][kind]["path"])
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["vode.recurrent"] == "true" and meta["vode.method"] == "rnn_mvod"
        assert meta["vode.metric_scale"] == "false"
        spec = json.loads(meta["vode.state"])
        names_in = [i.name for i in model.graph.input]
        names_out = [o.name for o in model.graph.output]
        assert names_in[0] == "image" and names_out[0] == ("inv_depth" if kind == "depth" else "pose")
        assert [s["input"] for s in spec] == names_in[1:]
        assert [s["output"] for s in spec] == names_out[-len(spec):]


def test_supervised_variant_trains_on_synthetic(synth, tmp_path):
    cfg = load_config(STAGE1, TINY + [f"data.path={synth}", "data.max_frames=0", "loss.supervised=true",
                                      "train.steps=1"])
    method = build_method(cfg, 1)
    assert {t.name for t in method.terms} == {"photometric", "depth", "grad_sim"}   # stage 1: no fb term
    assert method.export_info()["metric_scale"] is True
    from vode_training.trainer import Trainer

    summary = Trainer(cfg, tmp_path / "sup", progress=False).train()
    assert math.isfinite(summary["final_loss"])
    # no ground truth on the KITTI clip: a clear error
    if DATA.is_dir():
        cfg_k = load_config(STAGE1, TINY + [f"data.path={DATA}", "loss.supervised=true", "train.steps=1"])
        with pytest.raises(ValueError, match="ground-truth depth"):
            Trainer(cfg_k, tmp_path / "sup_k", progress=False).train()
