"""The odometry node and `vode eval pose` run one pipeline: the odometry the node publishes over real
DDS for the demo clip is, pose for pose, the trajectory the evaluation computes for the same frames."""
from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter

from vode_ros.core.frames import mount_transform, xyz_quat_to_matrix
from vode_ros.core.kitti import load_sequence, read_image

from ros_helpers import Harness, ensure_rclpy

pytestmark = [pytest.mark.slow, pytest.mark.ros, pytest.mark.needs_models, pytest.mark.needs_data]
FRAMES = 10
T0 = 100.0


def _pose(msg) -> np.ndarray:
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    return xyz_quat_to_matrix(np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w]))


@pytest.mark.parametrize("source", ["net", "hybrid"])
def test_node_odometry_equals_the_evaluations_trajectory(models_dir, kitti_dir, source):
    """net: the pose net alone; hybrid: with the depth node's depth of each previous frame (the
    evaluation's --depth net), each frame published once the previous one's depth is out."""
    ensure_rclpy()
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode
    from vode_ros.tools.evaluate import pose_depth_mode, predict_trajectory

    seq = load_sequence(kitti_dir, max_frames=FRAMES)
    images = [read_image(p) for p in seq.left]
    common = [Parameter("model_dir", value=str(models_dir))]
    nodes = [OdometryNode(parameter_overrides=common + [Parameter("pose_source", value=source)])]
    if source == "hybrid":
        nodes.append(DepthNode(parameter_overrides=common))
    h = Harness(nodes)
    try:
        assert h.wait_connected(subscribers=len(nodes)), "nodes did not subscribe"
        for i, img in enumerate(images):
            h.publish_frame(img, "mono8", seq.k, T0 + float(seq.times[i]))
            assert h.wait_for(lambda n=i: len(h.got["odom"]) > n, 60.0), f"no odometry for frame {i}"
            if source == "hybrid":
                assert h.wait_for(lambda n=i: len(h.got["depth"]) > n, 60.0), f"no depth for frame {i}"
        published = [_pose(m) for m in h.got["odom"][:FRAMES]]
    finally:
        h.close()
    mount = mount_transform([0.0, 0.0, 1.65], [0.0, 0.0, 0.0])      # the node's default mount
    node_cam = np.array([np.linalg.inv(mount) @ p @ mount for p in published])
    est, stats, _ = predict_trajectory(seq, source, pose_depth_mode(seq, source, "net"), models_dir, progress=False)
    assert est.shape == (FRAMES, 4, 4)
    assert np.abs(node_cam - est).max() < 1e-5, np.abs(node_cam - est).max()
    assert np.linalg.norm(est[-1, :3, 3]) > 1.0            # it moved: not two identities compared
