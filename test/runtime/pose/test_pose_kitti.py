"""PoseEstimator on the real KITTI 06 clip the repo ships (stereo, SGBM depth): a few frames, loose bounds."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vode_ros.core.geometry import invert_se3
from vode_ros.core.kitti import load_sequence, read_image
from vode_ros.core.resources import demo_clip
from vode_ros.core.stereo_depth import sgbm_depth
from vode_ros.runtime.pose.estimator import PoseEstimator, PoseEstimatorConfig

CLIP = demo_clip()


@pytest.mark.parametrize("source", ["geometric", "hybrid"])
def test_kitti06_stereo_few_frames(source):
    seq = load_sequence(CLIP, max_frames=6)
    est = PoseEstimator(PoseEstimatorConfig(pose_source=source))
    for i in range(len(seq)):
        left, right = read_image(seq.left[i]), read_image(seq.right[i])
        w, h = left.shape[1] // 2, left.shape[0] // 2          # SGBM at half resolution, as the benchmark
        depth = sgbm_depth(cv2.resize(left, (w, h), interpolation=cv2.INTER_AREA),
                           cv2.resize(right, (w, h), interpolation=cv2.INTER_AREA),
                           seq.k[0, 0] * w / left.shape[1], seq.baseline, num_disparities=64)
        true = invert_se3(seq.poses[i - 1]) @ seq.poses[i] if i else np.eye(4)
        # the hybrid source gets a crude "net": ground truth 20 % short, as a weak pose net would be
        net = None
        if source == "hybrid" and i:
            net = true.copy()
            net[:3, 3] *= 0.8
        e = est.step(left, seq.times[i], seq.k, depth=depth, net_t_prev_cur=net)
        if i == 0:
            continue
        d = invert_se3(true) @ e.t_prev_cur
        ang = np.degrees(np.arccos(np.clip((np.trace(d[:3, :3]) - 1) / 2, -1, 1)))
        assert e.source == source, e.reason
        assert e.inliers >= 100 and e.inlier_ratio > 0.5 and e.rmse_px < 1.5
        assert np.linalg.norm(d[:3, 3]) < 0.08 and ang < 0.3, (i, np.linalg.norm(d[:3, 3]), ang)
        assert abs(np.linalg.norm(e.t_prev_cur[:3, 3]) / np.linalg.norm(true[:3, 3]) - 1) < 0.05
        assert np.all(np.sqrt(np.diag(e.covariance)[:3]) < 0.1)
