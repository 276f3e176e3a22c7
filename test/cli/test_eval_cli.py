"""`vode eval depth|pose` end to end on a small synthetic sequence, ground-truth sources, bad input.

The model runs need exported models: models/depth.onnx + pose.onnx (or VODE_TEST_MODELS=DIR);
without them those tests are skipped (the error-path and ground-truth tests still run).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vode_training.data.synthetic import generate_sequence, write_kitti_layout
from vode_ros.tools import evaluate as run_eval

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("VODE_TEST_MODELS", REPO / "models"))
KITTI = REPO / "data" / "kitti_odometry_06_0000-0050"


@pytest.fixture(scope="module")
def synth_seq():
    return generate_sequence(frames=8, seed=11)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory, synth_seq):
    return write_kitti_layout(tmp_path_factory.mktemp("synth") / "seq", synth_seq)


def _vode(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vode_ros.cli.main", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------- with models

@pytest.mark.needs_models
def test_eval_depth_synthetic(synth_dir, tmp_path):
    out = tmp_path / "depth.json"
    res = _vode("eval", "depth", "--data", str(synth_dir), "--model-dir", str(MODELS),
                "--json", str(out), "--plots", str(tmp_path / "plots"), "--no-progress")
    assert res.returncode == 0, res.stderr
    for name in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"):
        assert name in res.stdout
    data = json.loads(out.read_text())
    assert {"task", "metrics", "settings", "gt_source", "n_images", "model", "scale", "per_image"} <= set(data)
    assert data["gt_source"] == "npy" and data["n_images"] == 8
    assert set(data["metrics"]) == {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"}
    assert all(np.isfinite(v) for v in data["metrics"].values())
    assert data["settings"]["garg_crop"] is False and data["settings"]["max_depth"] == 80.0
    assert data["model"]["metadata"]["vode.kind"] == "depth"
    assert (tmp_path / "plots" / "depth_abs_rel.png").is_file()
    # explicit median scaling flag is honoured and recorded
    res = _vode("eval", "depth", "--data", str(synth_dir), "--model-dir", str(MODELS), "--median-scaling",
                "--gt", "sgbm", "--json", str(out), "--no-progress", "--max-frames", "3")
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["settings"]["median_scaling"] is True and data["gt_source"] == "sgbm"
    assert data["n_images"] == 3 and "SGBM" in res.stdout


@pytest.mark.needs_models
def test_eval_pose_synthetic(synth_dir, tmp_path):
    out = tmp_path / "pose.json"
    res = _vode("eval", "pose", "--data", str(synth_dir), "--model-dir", str(MODELS), "--json", str(out),
                "--plots", str(tmp_path / "plots"), "--lengths", "2,5", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "ATE-5" in res.stdout and "t_err" in res.stdout
    data = json.loads(out.read_text())
    assert {"ate5", "ate", "kitti", "lengths", "rpe", "ape", "evo", "model", "n_frames"} <= set(data)
    assert data["n_frames"] == 8 and data["lengths"] == [2.0, 5.0]
    assert set(data["kitti"]) == {"none", "scale", "sim3"}
    assert data["kitti"]["sim3"]["lengths_used"] == [2.0, 5.0]
    assert np.isfinite(data["ate5"]["mean"]) and data["ate5"]["n_snippets"] == 4
    assert data["ate"]["sim3"]["rmse"] <= data["ate"]["se3"]["rmse"] + 1e-9
    if isinstance(data["evo"], dict):   # evo agrees with our APE
        assert data["evo"]["ape_trans_sim3"]["rmse"] == pytest.approx(data["ape"]["rmse"], rel=1e-6)
    assert len(data["est_poses"]) == 8
    assert (tmp_path / "plots" / "trajectory_topview.png").is_file()
    assert (tmp_path / "plots" / "trajectory_error.png").is_file()


@pytest.mark.needs_models
def test_eval_kitti_clip_sgbm(tmp_path):
    if not KITTI.is_dir():
        pytest.skip(f"{KITTI} not present")
    out = tmp_path / "d.json"
    res = _vode("eval", "depth", "--data", str(KITTI), "--model-dir", str(MODELS), "--max-frames", "3",
                "--json", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["gt_source"] == "sgbm" and data["settings"]["gt"]["num_disparities"] == 128


def test_eval_pose_geometric_stereo_on_the_demo_clip(tmp_path):
    """The odometry node's geometric source with SGBM depth (no model): the README's figure holds."""
    if not KITTI.is_dir():
        pytest.skip(f"{KITTI} not present")
    out = tmp_path / "p.json"
    res = _vode("eval", "pose", "--data", str(KITTI), "--pose-source", "geometric", "--depth", "stereo",
                "--json", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["pose_source"] == "geometric" and data["depth"].startswith("stereo") and data["model"] is None
    assert data["ate5"]["mean"] < 0.02, data["ate5"]
    assert data["estimator"]["fallbacks"] == 0 and data["n_frames"] == 51
    assert "pose source geometric" in res.stdout


@pytest.mark.needs_models
@pytest.mark.parametrize("source", ["net", "hybrid"])
def test_eval_pose_sources_agree_with_the_benchmark_loop(synth_dir, source):
    """evaluate_pose and pose_bench are one loop: the same poses for the same source and depth."""
    from vode_ros.core.kitti import load_sequence
    from vode_ros.runtime.pose.estimator import PoseEstimatorConfig
    from vode_ros.tools.pose_bench import NetRunner, prepare, run_source

    r = run_eval.evaluate_pose(synth_dir, MODELS, pose_source=source, depth="stereo", progress=False)
    seq = load_sequence(synth_dir)
    frames = prepare(seq, "stereo" if source != "net" else "none", NetRunner.load(MODELS), None, progress=False)
    ref = run_source(seq, frames, source, PoseEstimatorConfig(), progress=False)["poses"]
    est = np.array(r["est_poses"]).reshape(-1, 3, 4)
    assert np.allclose(est, ref[:, :3, :], atol=1e-6)
    assert r["pose_source"] == source


def test_eval_pose_depth_choice_errors(synth_dir, tmp_path):
    res = _vode("eval", "pose", "--data", str(synth_dir), "--pose-source", "geometric", "--depth", "gt",
                "--json", str(tmp_path / "x.json"))
    assert res.returncode == 2 and "depth_0" in res.stderr


# --------------------------------------------------------------------------- bad input (no models needed)

def test_missing_data_folder(tmp_path):
    for task in ("depth", "pose"):
        res = _vode("eval", task, "--data", str(tmp_path / "nope"), "--json", str(tmp_path / "x.json"))
        assert res.returncode == 2
        assert "not found" in res.stderr and "nope" in res.stderr


def test_pose_needs_poses_txt(synth_dir, tmp_path):
    copy = tmp_path / "noposes"
    shutil.copytree(synth_dir, copy)
    (copy / "poses.txt").unlink()
    res = _vode("eval", "pose", "--data", str(copy), "--json", str(tmp_path / "p.json"))
    assert res.returncode == 2 and "poses.txt" in res.stderr


def test_missing_model_names_the_file(synth_dir, tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    res = _vode("eval", "depth", "--data", str(synth_dir), "--model-dir", str(empty))
    assert res.returncode == 2 and str(empty / "depth.onnx") in res.stderr
    res = _vode("eval", "pose", "--data", str(synth_dir), "--model-dir", str(empty), "--json", str(tmp_path / "p.json"))
    assert res.returncode == 2 and str(empty / "pose.onnx") in res.stderr


def test_missing_gt_source_and_usage(synth_dir, tmp_path):
    res = _vode("eval", "depth", "--data", str(synth_dir), "--gt", "velodyne")
    assert res.returncode == 2 and "velodyne" in res.stderr and "Tr" in res.stderr
    assert _vode("eval").returncode == 2
    assert _vode("eval", "pose").returncode == 2                                # --data is required
    res = _vode("eval", "pose", "--data", str(synth_dir), "--max-frames", "6")  # --json is optional
    assert res.returncode == 0 and "ATE-5" in res.stdout, res.stderr


# --------------------------------------------------------------------------- ground-truth sources

def test_choose_gt(synth_dir, tmp_path):
    from vode_ros.core.kitti import load_sequence

    assert run_eval.choose_gt(load_sequence(synth_dir)) == "npy"
    copy = tmp_path / "nodepth"
    shutil.copytree(synth_dir, copy)
    shutil.rmtree(copy / "depth")
    assert run_eval.choose_gt(load_sequence(copy)) == "sgbm"
    shutil.rmtree(copy / "image_1")
    with pytest.raises(run_eval.DepthTruthError, match="no depth ground truth"):
        run_eval.choose_gt(load_sequence(copy))


def test_velodyne_projection_roundtrip(synth_seq, synth_dir, tmp_path):
    """Scans made from the exact depth (cam0 -> Velodyne with a KITTI-like Tr) project back onto it."""
    depth = synth_seq.depth[0]
    k = synth_seq.k
    h, w = depth.shape
    rng = np.random.default_rng(0)
    vs, us = rng.integers(0, h, 3000), rng.integers(0, w, 3000)
    keep = depth[vs, us] > 0
    vs, us = vs[keep], us[keep]
    z = depth[vs, us].astype(np.float64)
    cam = np.stack([(us - k[0, 2]) * z / k[0, 0], (vs - k[1, 2]) * z / k[1, 1], z], axis=1)
    # Tr: Velodyne (x fwd, y left, z up) -> cam0 (x right, y down, z fwd), with an offset
    tr = np.array([[0.0, -1.0, 0.0, -0.01], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27]])
    velo = (cam - tr[:, 3]) @ tr[:, :3]            # inverse of X_cam = R X_velo + t
    scan = np.concatenate([velo, np.ones((len(velo), 1))], axis=1).astype(np.float32)
    p0 = np.zeros((3, 4))
    p0[:, :3] = k
    got = run_eval.velodyne_depth_map(scan, tr, p0, (w, h), matlab_offset=False)
    assert (got > 0).sum() == len(np.unique(vs * w + us))
    np.testing.assert_allclose(got[vs, us], z, rtol=1e-4)
    # the reference code's MATLAB offset moves every point one pixel up-left
    shifted = run_eval.velodyne_depth_map(scan, tr, p0, (w, h), matlab_offset=True)
    inside = (vs >= 1) & (us >= 1)
    np.testing.assert_allclose(shifted[vs[inside] - 1, us[inside] - 1], z[inside], rtol=1e-4)

    # and through the folder loader: velodyne/ + Tr in calib.txt is picked up without depth/
    from vode_ros.core.kitti import load_sequence

    copy = tmp_path / "velo"
    shutil.copytree(synth_dir, copy)
    shutil.rmtree(copy / "depth")
    (copy / "velodyne").mkdir()
    for i in range(len(synth_seq)):
        scan.tofile(copy / "velodyne" / f"{i:06d}.bin")
    with open(copy / "calib.txt", "a") as fh:
        fh.write("Tr: " + " ".join(f"{x:.12e}" for x in tr.reshape(-1)) + "\n")
    seq = load_sequence(copy)
    assert run_eval.choose_gt(seq) == "velodyne"
    truth = run_eval.GroundTruth(seq, "velodyne", matlab_offset=False)
    np.testing.assert_allclose(truth(0, None)[vs, us], z, rtol=1e-4)
    assert truth.settings["projection"] == "P0 @ Tr"


# --------------------------------------------------------------------------- exact wiring with oracle "models"

class _OracleModel:
    """Stands in for an OnnxModel: preprocess passes the image through (as a key)."""

    def __init__(self, kind: str, metric: bool = True):
        from types import SimpleNamespace

        self.path = Path(f"/oracle/{kind}.onnx")
        self.provider = "oracle"
        self.meta = SimpleNamespace(method="oracle", width=416, height=128, color="gray", mean=(0.0,), std=(1.0,),
                                    metric_scale=metric, raw={"vode.kind": kind})

    def preprocess(self, img, encoding):
        return np.ascontiguousarray(img)

    def intrinsics_for_net(self, k, image_wh):
        return np.asarray(k)


def test_oracle_depth_and_pose_give_zero_error(synth_seq, synth_dir, tmp_path, monkeypatch):
    """With the exact depth / relative poses as "predictions" every metric is perfect: checks the
    frame bookkeeping, the (current, previous) -> T_prev_cur order and the integration."""
    import vode_ros.runtime.inference as inference

    frames = {synth_seq.left[i].tobytes(): i for i in range(len(synth_seq))}

    class Depth:
        def __init__(self, model):
            pass

        def __call__(self, x, fx=None):
            return synth_seq.depth[frames[x.tobytes()]] * 0.5 + (synth_seq.depth[frames[x.tobytes()]] == 0) * 50

    class Pose:
        def __init__(self, model):
            pass

        def start(self, current):
            pass

        def __call__(self, current, previous):
            return synth_seq.relative(frames[current.tobytes()], frames[previous.tobytes()])

    monkeypatch.setattr(run_eval, "_load_model", lambda model_dir, kind: _OracleModel(kind))
    monkeypatch.setattr(inference, "DepthNet", Depth)
    monkeypatch.setattr(inference, "PoseNet", Pose)
    d = run_eval.evaluate_depth(synth_dir, median_scaling=True, progress=False)
    assert d["metrics"]["abs_rel"] == pytest.approx(0.0, abs=1e-6) and d["metrics"]["a1"] == 1.0
    assert d["scale"]["scale_median"] == pytest.approx(2.0, rel=1e-5)        # undoes the 0.5
    d = run_eval.evaluate_depth(synth_dir, progress=False)                     # metric model: no scaling
    assert d["settings"]["median_scaling"] is False
    assert d["metrics"]["abs_rel"] == pytest.approx(0.5, abs=1e-6)
    p = run_eval.evaluate_pose(synth_dir, progress=False, plots=tmp_path / "plots", pose_source="net")
    assert p["ate"]["se3"]["rmse"] < 1e-6 and p["ate5"]["mean"] < 1e-6
    assert p["kitti"]["none"]["t_err"] < 1e-6 and p["kitti"]["none"]["n_segments"] > 0
    assert p["rpe"]["trans"]["rmse"] < 1e-6
    text = run_eval.format_pose(p) + run_eval.format_depth(d)
    assert "ATE-5" in text and "abs_rel" in text
    run_eval.write_json(p, tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text())["n_frames"] == len(synth_seq)


def test_first_frame_rebases_the_ground_truth(synth_dir):
    from vode_ros.core.kitti import load_sequence

    full = load_sequence(synth_dir)
    late = load_sequence(synth_dir, max_frames=3, first_frame=4)
    assert len(late) == 3 and late.frame_ids == full.frame_ids[4:7] and late.left == full.left[4:7]
    np.testing.assert_allclose(late.poses[0], np.eye(4), atol=1e-12)
    # relative motions are untouched by the rebase
    np.testing.assert_allclose(np.linalg.inv(late.poses[0]) @ late.poses[2],
                               np.linalg.inv(full.poses[4]) @ full.poses[6], atol=1e-9)


def test_first_frame_past_the_end_is_a_clear_error(synth_dir, tmp_path):
    res = _vode("eval", "pose", "--data", str(synth_dir), "--first-frame", "99", "--json", str(tmp_path / "x.json"),
                "--pose-source", "geometric", "--depth", "gt")
    assert res.returncode == 2 and "first frame 99" in res.stderr and "Traceback" not in res.stderr
