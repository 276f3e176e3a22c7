"""`vode eval pose` scores a classical odometry on the same images and depth beside the estimator."""
from __future__ import annotations

import numpy as np

from vode_ros.tools.evaluate import evaluate_pose, format_pose
from vode_training.data.synthetic import write_kitti_layout


def test_the_classical_baseline_is_scored_beside(tmp_path):
    folder = write_kitti_layout(tmp_path / "seq", frames=8, seed=11)
    result = evaluate_pose(folder, pose_source="geometric", depth="stereo", progress=False)
    c = result["classical"]
    assert {"ate5", "ate_sim3", "end_drift_pct", "path_err_pct", "method"} <= set(c)
    assert np.isfinite(c["ate5"]) and c["ate5"] < 0.2 and abs(c["path_err_pct"]) < 20
    text = format_pose(result)
    assert "classical baseline, same inputs (ORB" in text and "ours" in text
