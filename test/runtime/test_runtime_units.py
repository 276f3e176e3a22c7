"""Run-time building blocks without ROS: image codec, odometry integration, worker, frames."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vode_ros.core.frames import camera_to_base_motion, matrix_to_xyz_quat, mount_transform, xyz_quat_to_matrix
from vode_ros.core.geometry import invert_se3, mat2pose_vec, pose_vec2mat, scale_intrinsics
from vode_ros.core.image_codec import ImageDecodeError, decode_image, encode_image, to_gray
from vode_ros.runtime.latest_worker import LatestFrameWorker
from vode_ros.runtime.odometry import OdometryIntegrator


@pytest.mark.parametrize("encoding", ["mono8", "rgb8", "bgr8", "rgba8", "bgra8", "32FC1"])
def test_codec_round_trip(encoding):
    rng = np.random.default_rng(0)
    ch = {"mono8": 1, "32FC1": 1}.get(encoding, 4 if "a" in encoding[3:] else 3)
    shape = (5, 7) if ch == 1 else (5, 7, ch)
    arr = (rng.random(shape) * 200).astype(np.float32 if encoding == "32FC1" else np.uint8)
    f = encode_image(arr, encoding)
    back = decode_image(f["encoding"], f["height"], f["width"], f["step"], f["is_bigendian"], f["data"])
    assert np.array_equal(back, arr)


def test_codec_row_padding_and_errors():
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    padded = np.zeros((3, 8), np.uint8)
    padded[:, :4] = arr
    assert np.array_equal(decode_image("mono8", 3, 4, 8, False, padded.tobytes()), arr)
    with pytest.raises(ImageDecodeError, match="unsupported encoding 'yuv422'"):
        decode_image("yuv422", 3, 4, 8, False, b"\0" * 24)
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image("mono8", 3, 4, 4, False, b"\0" * 5)
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image("mono8", 0, 0, 0, False, b"")


def test_gray_conversion_matches_channel_order():
    rgb = np.zeros((1, 1, 3), np.uint8)
    rgb[..., 0] = 255   # pure red in RGB order
    assert to_gray(rgb, "rgb8")[0, 0] == 76
    assert to_gray(rgb, "bgr8")[0, 0] == 29   # the same bytes read as BGR are pure blue


def test_pose_vector_round_trip_and_inverse():
    vec = np.array([0.3, -0.2, 1.1, 0.05, -0.1, 0.2])
    mat = pose_vec2mat(vec)
    assert np.allclose(mat2pose_vec(mat), vec)
    assert np.allclose(invert_se3(mat) @ mat, np.eye(4))


def test_scale_intrinsics_pixel_centres():
    k = np.array([[700.0, 0, 600.0], [0, 700.0, 180.0], [0, 0, 1]])
    ks = scale_intrinsics(k, (1200, 360), (400, 120))
    assert ks[0, 0] == pytest.approx(700 / 3)
    # The centre of the image stays the centre: (1200-1)/2 -> (400-1)/2.
    kc = scale_intrinsics(np.array([[1, 0, 599.5], [0, 1, 179.5], [0, 0, 1.0]]), (1200, 360), (400, 120))
    assert kc[0, 2] == pytest.approx(199.5) and kc[1, 2] == pytest.approx(59.5)


def test_forward_camera_motion_is_base_x_motion():
    mount = mount_transform([0.0, 0.0, 1.65], [0.0, 0.0, 0.0])
    forward = np.eye(4)
    forward[2, 3] = 1.2          # optical z = forward
    base = camera_to_base_motion(forward, mount)
    assert np.allclose(base[:3, 3], [1.2, 0, 0]) and np.allclose(base[:3, :3], np.eye(3))
    xyz, q = matrix_to_xyz_quat(mount)
    assert np.allclose(xyz_quat_to_matrix(xyz, q), mount)


def test_integrator_velocity_and_reset():
    integ = OdometryIntegrator(mount_transform([0, 0, 0], [0, 0, 0]))
    integ.start(0.0)
    step = np.eye(4)
    step[2, 3] = 1.0
    for i in range(1, 4):
        state = integ.update(0.1 * i, step)
    assert np.allclose(state.pose[:3, 3], [3, 0, 0])
    assert np.allclose(state.twist_linear, [10, 0, 0])
    assert integ.time_went_backwards(0.05)
    integ.reset()
    assert np.allclose(integ.pose, np.eye(4)) and integ.resets == 1


def test_latest_frame_worker_drops_old_frames():
    seen, gate = [], threading.Event()

    def slow(item):
        gate.wait(2.0)
        seen.append(item)

    worker = LatestFrameWorker(slow)
    worker.submit(0)
    time.sleep(0.05)              # 0 is now running
    for i in range(1, 6):
        worker.submit(i)          # 1..4 are replaced by newer frames
    gate.set()
    assert worker.wait_idle(5.0)
    worker.stop()
    assert seen == [0, 5] and worker.dropped == 4
