"""`vode adapt` end to end on small bags (tiny nets, a few steps): the guard installs a model that is
better on the bag's held-out end and keeps the old one when the candidate is worse (a poisoned
bag: its training part has left and right swapped); report, figure, folders, hot reload of
running nodes (real rclpy)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_NETS

pytestmark = [pytest.mark.needs_stereo_data, pytest.mark.slow]

FRAMES = 25
TINY = ["data.width=128", "data.height=64", "data.max_stride=1", "data.scale_crop=0.0"] + TINY_NETS


def _clip(src: Path, dst: Path, frames: int, swap_first: int = 0, depth: bool = False) -> Path:
    """The first ``frames`` frames of a KITTI stereo folder; left and right swapped in the first
    ``swap_first`` (a poisoned recording: the stereo term then teaches nonsense); ``depth``: a
    depth_0/ as an RGB-D camera would give (here the pair's SGBM, uint16 m * 256)."""
    for cam in ("image_0", "image_1"):
        (dst / cam).mkdir(parents=True)
    if depth:
        import cv2

        from vode_ros.core.kitti import load_sequence, read_image
        from vode_ros.core.stereo_depth import sgbm_depth

        seq = load_sequence(src, max_frames=frames)
        (dst / "depth_0").mkdir()
        for i in range(frames):
            d = sgbm_depth(read_image(seq.left[i]), read_image(seq.right[i]), float(seq.k[0, 0]), seq.baseline)
            cv2.imwrite(str(dst / "depth_0" / f"{i:06d}.png"), np.clip(d * 256, 0, 65535).astype(np.uint16))
    for i in range(frames):
        a, b = ("image_1", "image_0") if i < swap_first else ("image_0", "image_1")
        shutil.copy(src / a / f"{i:06d}.png", dst / "image_0" / f"{i:06d}.png")
        shutil.copy(src / b / f"{i:06d}.png", dst / "image_1" / f"{i:06d}.png")
    shutil.copy(src / "calib.txt", dst / "calib.txt")
    for name in ("times.txt", "poses.txt"):
        lines = (src / name).read_text().splitlines()[:frames]
        (dst / name).write_text("\n".join(lines) + "\n")
    return dst


@pytest.fixture(scope="module")
def bags(tmp_path_factory, kitti_dir):
    from vode_ros.bag.kitti_to_bag import convert

    root = tmp_path_factory.mktemp("adapt_bags")
    good = convert(_clip(kitti_dir, root / "good_kitti", FRAMES), root / "good", progress=False)["out_path"]
    poisoned = convert(_clip(kitti_dir, root / "poisoned_kitti", FRAMES, swap_first=20), root / "poisoned",
                       progress=False)["out_path"]
    rgbd = convert(_clip(kitti_dir, root / "rgbd_kitti", FRAMES, depth=True), root / "rgbd", progress=False)["out_path"]
    return {"good": Path(good), "poisoned": Path(poisoned), "rgbd": Path(rgbd), "root": root}


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, kitti_dir):
    """A tiny stereo model (random weights) exported like the shipped one: depth.onnx, pose.onnx, checkpoint.pt."""
    import torch

    from vode_training.checkpoint import export_nets, save_checkpoint
    from vode_training.config import load_config
    from vode_training.export import export_checkpoint
    from vode_training.methods import build_method

    torch.manual_seed(0)
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny_base")
    cfg = load_config(None, TINY + [f"data.path={kitti_dir}", "data.max_frames=4"])
    full = save_checkpoint(root / "full.pt", build_method(cfg, channels=1), None, 0, cfg)
    export_checkpoint(full, root / "model")
    export_nets(full, root / "model" / "checkpoint.pt")
    return root / "model"


def _options(bag: Path, init: Path, out: Path, **kw):
    from vode_ros.tools.adaptation.offline import AdaptOptions

    base = dict(bag=str(bag), init=str(init), out=str(out), name="robot", minutes=10.0, max_steps=6, lr=1e-3,
                batch_size=2, base_share=0.0, l2sp=0.0, other=[], threads=1, progress=False)
    base.update(kw)
    return AdaptOptions(**base)


def test_guard_installs_a_better_model_and_keeps_it_against_a_poisoned_bag(bags, tiny_base, tmp_path):
    from vode_ros.runtime.inference import OnnxModel
    from vode_ros.tools.adaptation.offline import adapt_bag

    out = tmp_path / "adapted"
    # The left camera alone, no odometry: judged on the photometric error (a random tiny net's
    # metres and five-frame ATE-5 are noise; the depth and pose rules of the guard have their own
    # tests). Without a scale source the model is relative, and the report says so.
    good = adapt_bag(_options(bags["good"], tiny_base, out, max_steps=8, odometry_topic="",
                              image_topic="/camera/left/image_raw"))
    place = out / "robot"
    assert good["installed"], good["verdict"]
    assert good["after"]["photometric"] < good["before"]["photometric"]
    assert good["scale_source"] == "none" and "relative" in good["scale"] and good["depth_reference"] == "none"
    assert good["split"] == {"frames": FRAMES, "train": [0, 19], "heldout": [20, 24],
                             "rule": "in time: the last 20% held out"}
    assert "depth_abs_rel" not in good["after"] and "pose_ate5" not in good["after"]
    assert {p.name for p in place.iterdir()} >= {"depth.onnx", "pose.onnx", "checkpoint.pt", "report.json", "report.png"}
    assert json.loads((place / "report.json").read_text())["installed"] is True
    depth = OnnxModel(place / "depth.onnx", expected_kind="depth")
    assert "adapted on good" in depth.meta.raw["vode.trained_on"] and depth.meta.raw["vode.scale_source"] == "none"
    assert depth.meta.metric_scale is False
    spread = json.loads(depth.meta.raw["vode.train_depth_range"])["spread"]    # recorded at export (metric_trust)
    assert spread > 1.0
    installed = {n: (place / n).read_bytes() for n in ("depth.onnx", "pose.onnx", "checkpoint.pt")}

    # From the installed model on, a stereo recording whose training part is poisoned: the candidate
    # is worse on the held-out (genuine) end, so the model in use stays and the report says why.
    bad = adapt_bag(_options(bags["poisoned"], place, out, lr=3e-3, max_steps=8, odometry_topic=""))
    assert bad["scale_source"] == "stereo" and bad["depth_reference"] == "stereo SGBM"
    assert {"depth_abs_rel", "depth_abs_rel_metric", "constant_abs_rel"} <= set(bad["after"])
    assert not bad["installed"], bad["verdict"]
    assert bad["after"]["photometric"] > bad["before"]["photometric"]
    assert "did not fall" in bad["verdict"] or "got worse" in bad["verdict"]
    assert {n: (place / n).read_bytes() for n in installed} == installed
    assert (place / "rejected" / "depth.onnx").is_file()
    assert json.loads((place / "report.json").read_text())["installed"] is False


def test_cli_end_to_end_with_hot_reload_of_running_nodes(bags, tiny_base, tmp_path):
    """`vode adapt ... --apply-to /`: the running depth and odometry nodes load the new model."""
    from rclpy.parameter import Parameter

    from ros_helpers import Harness, ensure_rclpy
    from vode_ros.cli.main import main
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode

    ensure_rclpy()
    depth = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(tiny_base))])
    odom = OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(tiny_base))])
    h = Harness([depth, odom])
    try:
        rc = main(["adapt", "--bag", str(bags["good"]), "--init", str(tiny_base), "--out", str(tmp_path), "--name", "car",
                   "--minutes", "5", "--max-steps", "8", "--lr", "1e-3", "--batch-size", "2", "--base-share", "0",
                   "--other", str(bags["root"] / "good_kitti"), "--odometry-topic", "", "--image-topic",
                   "/camera/left/image_raw", "--threads", "1", "--no-progress",
                   "--apply-to", "/"])
        assert rc == 0
        report = json.loads((tmp_path / "car" / "report.json").read_text())
        assert report["installed"], report["verdict"]
        assert report["applied"] and all("reloaded" in line for line in report["applied"]), report["applied"]
        assert depth.model.path == tmp_path / "car" / "depth.onnx"
        assert odom.model.path == tmp_path / "car" / "pose.onnx"
        row = report["forgetting"][0]
        assert row["place"] == "good_kitti" and np.isfinite(row["abs_rel_before"]) and np.isfinite(row["change"])
        assert (tmp_path / "car" / "report.png").stat().st_size > 10_000
    finally:
        h.close()


def test_demo_adapt_on_a_clip_shows_before_and_after(bags, tiny_base, tmp_path):
    """`vode demo --adapt`: the clip -> bag -> vode adapt -> report with before/after and the figure."""
    from vode_ros.tools.adaptation.demo_adapt import run_adapt_demo

    report = run_adapt_demo(bags["root"] / "good_kitti", tmp_path, 5.0, log=lambda m: None, progress=False,
                            init=str(tiny_base), max_steps=2, batch_size=2, base_share=0.0, threads=1,
                            odometry_topic="")
    assert report["split"]["frames"] == FRAMES and {"photometric", "depth_abs_rel"} <= set(report["before"])
    assert Path(report["figure"]).is_file() and Path(report["report"]).parent == tmp_path / "adapted" / "good_kitti"
    assert (tmp_path / "bags" / "good_kitti_adapt" / "metadata.yaml").is_file()


def test_a_depth_topic_is_reference_and_scale_source(bags, tiny_base, tmp_path):
    """A mono camera with a depth sensor (`vode bag from-kitti` writes depth_0/ as 32FC1): the depth
    topic judges the depth and calibrates the model's metres (folded into vode.train_fx)."""
    from vode_ros.runtime.inference import OnnxModel
    from vode_ros.tools.adaptation.offline import adapt_bag

    rep = adapt_bag(_options(bags["rgbd"], tiny_base, tmp_path, image_topic="/camera/left/image_raw",
                             depth_topic="/camera/depth/image", odometry_topic="", max_steps=2))
    assert rep["scale_source"] == "depth topic" and rep["depth_reference"] == "depth topic"
    assert rep["judged_depth"] == "depth_abs_rel_metric" and "calibrated to /camera/depth/image" in rep["scale"]
    assert abs(rep["after"]["scale_pred_over_true"] - 1.0) < 0.25        # the calibration holds on held-out frames
    meta = OnnxModel(Path(rep["model_dir"] or rep["candidate_dir"]) / "depth.onnx", expected_kind="depth").meta
    assert meta.metric_scale and "depth topic" in meta.raw["vode.scale_calibration"]


def test_bag_odometry_becomes_camera_poses_and_scores(bags):
    from vode_ros.core.kitti import load_sequence
    from vode_ros.tools.adaptation.bag_data import load_adapt_data
    from vode_ros.tools.adaptation.score import pose_scores

    data = load_adapt_data(bags["good"])
    assert data.odometry_topic == "/ground_truth/odom" and data.stereo and data.seq.poses.shape == (FRAMES, 4, 4)
    truth = load_sequence(bags["root"] / "good_kitti").poses
    assert np.allclose(data.seq.poses, np.linalg.inv(truth[0]) @ truth, atol=1e-6)
    same = pose_scores(data.seq.poses, data.seq.poses)
    assert same["pose_ate5"] < 1e-9 and abs(same["path_length_ratio"] - 1) < 1e-9
    half = data.seq.poses.copy()
    half[:, :3, 3] *= 0.5
    assert pose_scores(half, data.seq.poses)["path_length_ratio"] == pytest.approx(0.5)


def test_bad_input_is_one_line(tmp_path, capsys):
    from vode_ros.cli.main import main

    assert main(["adapt", "--bag", str(tmp_path / "nope"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such bag" in err[0]
    assert main(["adapt", "--bag", "x", "--holdout", "1.5"]) == 2
