"""Online adaptation (vode_ros.tools.adaptation): replay buffer bounds, held-out split, rollback of a
worse candidate, acceptance + export of a better one, atomic save; and a depth node with adapt on
(real rclpy) that steps, swaps or rolls back, reloads the odometry node and saves loadable ONNX.
Tiny nets at 128x64 so that everything stays in a few seconds."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vode_ros.tools.adaptation import FrameStore

pytestmark = [pytest.mark.slow, pytest.mark.ros]

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.width=128", "data.height=64", "data.stereo=true", "data.max_stride=1",
        "model.depth_enc_channels=[4, 8, 8, 16, 16]", "model.depth_dec_channels=[4, 4, 8, 8, 16]",
        "model.pose_channels=[4, 8, 8, 16, 16, 16, 16]", "loss.stereo_in_min=false"]


# -- replay buffer (numpy only) --------------------------------------------------------------------
def _img(v: int) -> np.ndarray:
    return np.full((1, 4, 8), v % 256, np.uint8)


def test_buffer_is_bounded_and_heldout_frames_are_never_trained_on():
    store = FrameStore(capacity=16, offsets=(-1, 1), holdout_every=4, holdout_size=3)
    k = np.eye(3, dtype=np.float32)
    for i in range(50):
        store.add(_img(i), k, stamp=0.1 * i)
    assert len(store) == 16 and store.seen == 50
    assert [f.seq for f in store.frames] == list(range(34, 50))
    held = {f.seq for f in store.frames if f.heldout}
    assert held == {s for s in range(34, 50) if s % 4 == 3}
    cands = store.train_candidates()
    assert cands, "no training snippet"
    for tgt, stride in cands:
        assert not {tgt, tgt - stride, tgt + stride} & held
    # Held-out snippets: held-out targets (value = seq), their neighbours as sources; bounded.
    assert len(store.holdout) == 3
    for snip in store.holdout:
        assert snip.seqs[0] % 4 == 3 and snip.tgt[0, 0, 0] == snip.seqs[0]
        assert [int(s[0, 0, 0]) for s in snip.src] == [snip.seqs[0] - 1, snip.seqs[0] + 1]
    rng = np.random.default_rng(0)
    for snip in store.sample(8, rng):
        assert not set(snip.seqs) & held and snip.src.shape == (2, 1, 4, 8)


def test_snippets_never_span_a_loop_or_gap():
    store = FrameStore(capacity=32, offsets=(-1, 1), holdout_every=100)
    k = np.eye(3, dtype=np.float32)
    stamps = [0.0, 0.1, 0.2, 0.3, 0.0, 0.1, 0.2, 5.0, 5.1]     # bag loop after 4, gap before 7
    for i, t in enumerate(stamps):
        store.add(_img(i), k, stamp=t)
    assert sorted(t for t, _ in store.train_candidates()) == [1, 2, 5]
    with pytest.raises(ValueError, match="holdout_every"):
        FrameStore(8, holdout_every=1)
    with pytest.raises(ValueError, match="right image"):
        FrameStore(8, stereo=True).add(_img(0), k, 0.0)


# -- adapter with torch (tiny nets) ----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory, kitti_dir):
    """A tiny stereo SfMLearner checkpoint, its ONNX export and KITTI frames at its size."""
    import torch

    from vode_training.config import load_config
    from vode_training.export import export_checkpoint
    from vode_training.methods import build_method
    from vode_training.checkpoint import save_checkpoint

    from vode_ros.runtime.inference import OnnxModel
    from vode_ros.core.kitti import load_sequence, read_image

    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny")
    cfg = load_config(None, TINY + [f"data.path={kitti_dir}"])
    ckpt = save_checkpoint(root / "checkpoint.pt", build_method(cfg, channels=1), None, 0, cfg)
    export_checkpoint(ckpt, root / "models")
    seq = load_sequence(kitti_dir, max_frames=12)
    depth = OnnxModel(root / "models" / "depth.onnx", ["CPUExecutionProvider"], expected_kind="depth")
    lefts = [read_image(p) for p in seq.left]
    rights = [read_image(p) for p in seq.right]
    return {"root": root, "ckpt": ckpt, "models": root / "models", "model": depth, "seq": seq,
            "left": lefts, "right": rights}


def _adapter(tiny, save_dir, on_accept=None, **kw):
    from vode_ros.tools.adaptation import AdaptSettings, OnlineAdapter

    settings = AdaptSettings(checkpoint=str(tiny["ckpt"]), save_dir=str(save_dir), buffer_size=16, holdout_every=4,
                             holdout_size=4, batch_size=1, lr=1e-4, check_every=1, stereo=True, **kw)
    adapter = OnlineAdapter(settings, tiny["model"].meta, on_accept=on_accept)
    m, seq = tiny["model"], tiny["seq"]
    for i, (left, right) in enumerate(zip(tiny["left"], tiny["right"])):
        k_net = m.intrinsics_for_net(seq.k, seq.image_size)
        adapter.add_frame(m.preprocess(left, "mono8"), k_net, 0.1 * i, right, seq.baseline)
    return adapter


def _params(method):
    return {k: v.detach().clone() for k, v in method.state_dict().items()}


def test_rollback_of_a_worse_candidate_and_acceptance_of_a_better_one(tiny, tmp_path):
    import torch

    accepted_dirs = []
    adapter = _adapter(tiny, tmp_path / "save", on_accept=accepted_dirs.append)
    assert adapter.ready() and len(adapter.store.holdout) >= 1
    assert adapter.step() is not None and adapter.stats.steps == 1
    good = _params(adapter.accepted)
    # Forced-worse candidate: every pixel at max_depth (no parallax at all) -> rolled back.
    with torch.no_grad():
        for head in adapter.method.nets["depth"].heads:
            head[1].bias.fill_(-30.0)
    assert adapter.check() == "rolled back"
    s = adapter.stats
    assert s.rollbacks == 1 and s.swaps == 0 and s.heldout_after > s.heldout_before
    assert "did not fall" in s.last_reason          # the held-out guard of `vode adapt` judged it
    assert all(torch.equal(v, good[k]) for k, v in adapter.method.state_dict().items())
    assert all(torch.equal(v, good[k]) for k, v in adapter.accepted.state_dict().items())
    assert not accepted_dirs
    # Production made worse instead: the (good) candidate is accepted, exported and handed over.
    with torch.no_grad():
        for head in adapter.accepted.nets["depth"].heads:
            head[1].bias.fill_(-30.0)
    adapter._prod_cache = None
    assert adapter.check() == "accepted"
    assert s.swaps == 1 and s.version == 1 and s.heldout_after < s.heldout_before
    assert s.last_reason.startswith("install: held-out photometric error fell")
    assert accepted_dirs == [adapter.live_dir]
    assert {p.name for p in adapter.live_dir.iterdir()} == {"depth.onnx", "pose.onnx", "checkpoint.pt"}
    assert all(torch.equal(v, adapter.method.state_dict()[k]) for k, v in adapter.accepted.state_dict().items())
    assert not [p for p in (tmp_path / "save").iterdir() if p.name.startswith(".")]   # no staging left


def test_save_is_atomic_and_loadable(tiny, tmp_path, monkeypatch):
    import onnx

    import vode_training.export as export
    from vode_training.checkpoint import load_checkpoint

    from vode_ros.runtime.inference import OnnxModel

    save = tmp_path / "save"
    adapter = _adapter(tiny, save)
    for _ in range(2):
        adapter.step()
    written = adapter.save()
    assert sorted(Path(p).name for p in written.values()) == ["checkpoint.pt", "depth.onnx", "pose.onnx"]
    depth = OnnxModel(save / "depth.onnx", expected_kind="depth")
    pose = OnnxModel(save / "pose.onnx", expected_kind="pose")
    assert "online adaptation" in depth.meta.raw["vode.trained_on"] and depth.meta.metric_scale
    assert "online adaptation" in pose.meta.raw["vode.trained_on"]
    ckpt = load_checkpoint(save / "checkpoint.pt")
    assert ckpt["optimizer"] == {} and set(ckpt["models"]) == {"depth", "pose"}
    before = {p.name: p.read_bytes() for p in save.iterdir() if p.is_file()}
    # A failing export leaves the saved files as they were, and no temporaries.
    (adapter.live_dir / "depth.onnx").unlink()

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "export_checkpoint", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        adapter.save()
    assert {p.name: p.read_bytes() for p in save.iterdir() if p.is_file()} == before
    assert not [p for p in save.rglob("*") if p.name.startswith(".")]
    onnx.checker.check_model(onnx.load(str(save / "pose.onnx")))


def test_runtime_without_adapt_does_not_import_torch():
    code = ("import sys, vode_ros.tools.adaptation, vode_ros.nodes.depth_node; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


# -- the depth node with adapt on (real rclpy) -------------------------------------------------------
def test_depth_node_adapts_swaps_reloads_odometry_and_saves(tiny, tmp_path):
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_srvs.srv import Trigger

    from vode_ros.runtime.inference import OnnxModel
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode

    from ros_helpers import Harness, ensure_rclpy

    ensure_rclpy()
    save = tmp_path / "adapted"
    params = dict(model_dir=str(tiny["models"]), mode="stereo", adapt=True, adapt_checkpoint=str(tiny["ckpt"]),
                  adapt_save_dir=str(save), adapt_buffer_size=16, adapt_holdout_every=4, adapt_holdout_size=4,
                  adapt_batch_size=1, adapt_check_every=1, adapt_max_steps_per_second=20.0, adapt_nice=0)
    depth = DepthNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    odom = OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(tiny["models"]))])
    h = Harness([depth, odom])
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    right_pub = h.probe.create_publisher(Image, "/camera/right/image_raw", reliable)
    right_info_pub = h.probe.create_publisher(CameraInfo, "/camera/right/camera_info", reliable)
    save_client = h.probe.create_client(Trigger, "/depth_node/save_adapted")
    seq = tiny["seq"]
    try:
        assert h.wait_connected(2) and h.wait_for(lambda: right_pub.get_subscription_count() > 0)
        for i, (left, right) in enumerate(zip(tiny["left"], tiny["right"])):
            t = 100.0 + 0.1 * i
            h.publish_right(right_pub, right_info_pub, right, seq.k, seq.baseline, t)
            h.publish_frame(left, "mono8", seq.k, t)
            assert h.wait_for(lambda n=i: depth.frames_out > n, 15.0)
        stats = depth.adapter.stats
        assert h.wait_for(lambda: stats.steps >= 1 and stats.swaps + stats.rollbacks >= 1, 30.0), stats
        if stats.swaps:   # the odometry node follows the live folder
            live_pose = save / "live" / "pose.onnx"
            assert h.wait_for(lambda: odom.model.path == live_pose, 15.0)
            assert depth.model.path == save / "live" / "depth.onnx"
        assert h.wait_for(lambda: any(s.name == "vode_ros: depth_node adaptation"
                                      and {v.key for v in s.values} >= {"adapt_steps", "adapt_swaps", "adapt_rollbacks",
                                                                        "adapt_heldout_loss_before",
                                                                        "adapt_heldout_loss_after"}
                                      for d in h.got["diag"] for s in d.status), 5.0)
        assert save_client.wait_for_service(timeout_sec=10)
        res = save_client.call(Trigger.Request(), timeout_sec=60)
        assert res is not None and res.success, res
        for kind in ("depth", "pose"):
            m = OnnxModel(save / f"{kind}.onnx", expected_kind=kind)
            assert "online adaptation" in m.meta.raw["vode.trained_on"]
    finally:
        h.close()


def test_a_checkpoint_of_another_model_is_refused(tiny, tmp_path):
    import dataclasses

    from vode_ros.tools.adaptation import AdaptationError, AdaptSettings, OnlineAdapter

    other = dataclasses.replace(tiny["model"].meta, width=256)
    with pytest.raises(AdaptationError, match="width 128 vs 256"):
        OnlineAdapter(AdaptSettings(checkpoint=str(tiny["ckpt"]), save_dir=str(tmp_path)), other)
