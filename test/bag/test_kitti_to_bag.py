"""KITTI -> rosbag2 converter, bag reader helpers and `vode bag` CLI (real KITTI clip, 5 frames)."""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from vode_ros.core import frames
from vode_ros.bag import topics as T
from vode_ros.bag.kitti_to_bag import BagExistsError, convert
from vode_ros.bag.reader import (
    image_to_numpy,
    open_bag,
    read_depth_images,
    read_messages,
    read_trajectory,
    transform_to_matrix,
)
from vode_ros.cli import bag as bag_cli
from vode_ros.core.kitti import KittiFormatError, load_sequence

KITTI = Path(__file__).resolve().parents[2] / "data" / "kitti_odometry_06_0000-0050"
N = 5


def _copy_clip(dst: Path, n: int, calib: bool = True) -> Path:
    dst.mkdir()
    for cam in ("image_0", "image_1"):
        (dst / cam).mkdir()
        for i in range(n):
            shutil.copy(KITTI / cam / f"{i:06d}.png", dst / cam)
    for name in ("times.txt", "poses.txt") + (("calib.txt",) if calib else ()):
        shutil.copy(KITTI / name, dst / name)
    return dst


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def bag(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "clip"
    summary = convert(KITTI, out, storage=request.param, progress=False, max_frames=N)
    msgs: dict[str, list] = {}
    for topic, stamp, msg in read_messages(out):
        msgs.setdefault(topic, []).append((stamp, msg))
    return SimpleNamespace(path=out, summary=summary, msgs=msgs, seq=load_sequence(KITTI, max_frames=N))


def test_counts_and_layout(bag):
    expected = {T.LEFT_IMAGE: N, T.LEFT_INFO: N, T.RIGHT_IMAGE: N, T.RIGHT_INFO: N, T.GROUND_TRUTH: N, T.TF_STATIC: 1}
    assert {k: len(v) for k, v in bag.msgs.items()} == expected
    assert bag.summary["topics"] == expected
    assert (bag.path / "metadata.yaml").is_file()
    suffix = ".mcap" if bag.summary["storage"] == "mcap" else ".db3"
    assert (bag.path / (bag.path.name + suffix)).is_file()
    assert not [p for p in bag.path.parent.iterdir() if p.name.startswith(".")]  # temp dir cleaned


def test_images_equal_pngs(bag):
    stamps_ns = np.round(bag.seq.times * 1e9).astype(np.int64)
    cams = ((T.LEFT_IMAGE, bag.seq.left, T.LEFT_FRAME), (T.RIGHT_IMAGE, bag.seq.right, T.RIGHT_FRAME))
    for topic, paths, frame_id in cams:
        for i, (stamp, msg) in enumerate(bag.msgs[topic]):
            assert msg.encoding == "mono8" and msg.header.frame_id == frame_id
            assert stamp == stamps_ns[i]
            np.testing.assert_array_equal(image_to_numpy(msg), cv2.imread(str(paths[i]), cv2.IMREAD_UNCHANGED))


def test_camera_info(bag):
    k, b = bag.seq.k, bag.seq.baseline
    fx = k[0, 0]
    assert b == pytest.approx(0.5372, abs=1e-3)
    for topic, frame_id, tx in ((T.LEFT_INFO, T.LEFT_FRAME, 0.0), (T.RIGHT_INFO, T.RIGHT_FRAME, -fx * b)):
        for _, msg in bag.msgs[topic]:
            assert msg.header.frame_id == frame_id
            assert (msg.width, msg.height) == (1226, 370)
            assert msg.distortion_model == "plumb_bob" and not np.any(msg.d)
            np.testing.assert_allclose(msg.k.reshape(3, 3), k)
            np.testing.assert_allclose(msg.r.reshape(3, 3), np.eye(3))
            p = msg.p.reshape(3, 4)
            np.testing.assert_allclose(p[:, :3], k)
            assert p[0, 3] == pytest.approx(tx) and p[1, 3] == 0 and p[2, 3] == 0
    # The right P reproduces KITTI's P1 (-379.8145 for sequence 06).
    assert bag.msgs[T.RIGHT_INFO][0][1].p[3] == pytest.approx(-379.8145, abs=1e-3)


def test_ground_truth_through_mount(bag):
    stamps, poses = read_trajectory(bag.path, T.GROUND_TRUTH)
    assert len(poses) == N
    np.testing.assert_array_equal(stamps, np.round(bag.seq.times * 1e9).astype(np.int64))
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-9)
    mount = frames.mount_transform(T.DEFAULT_MOUNT_XYZ, T.DEFAULT_MOUNT_RPY)
    for k in range(1, N):
        expected = mount @ bag.seq.poses[k] @ np.linalg.inv(mount)
        np.testing.assert_allclose(poses[k], expected, atol=1e-6)
        # KITTI: the car drives along the camera's +z, which is base_link's +x (forward);
        # small pitch changes move the 1.65 m lever arm by a fraction of a millimetre.
        assert poses[k][0, 3] == pytest.approx(bag.seq.poses[k][2, 3], abs=2e-3)
        assert poses[k][0, 3] > 0.5 * k
    for _, msg in bag.msgs[T.GROUND_TRUTH]:
        assert msg.header.frame_id == T.ODOM_FRAME and msg.child_frame_id == T.BASE_FRAME
    # Twist: ~12 m/s forward in base_link (1.2 m per 0.1 s frame).
    assert 5.0 < bag.msgs[T.GROUND_TRUTH][2][1].twist.twist.linear.x < 20.0


def test_tf_static(bag):
    [(stamp, msg)] = bag.msgs[T.TF_STATIC]
    assert stamp == 0
    [tf] = msg.transforms
    assert tf.header.frame_id == T.LEFT_FRAME and tf.child_frame_id == T.RIGHT_FRAME
    expected = np.eye(4)
    expected[0, 3] = bag.seq.baseline
    np.testing.assert_allclose(transform_to_matrix(tf.transform), expected, atol=1e-12)
    with open_bag(bag.path) as reader:
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    assert qos[T.TF_STATIC][0].durability.name == "TRANSIENT_LOCAL"
    assert qos[T.TF_STATIC][0].reliability.name == "RELIABLE"
    assert qos[T.TF_STATIC][0].depth == 1
    assert qos[T.LEFT_IMAGE][0].durability.name == "VOLATILE"


def test_stamp_offset(tmp_path):
    offset = 1_700_000_000.25
    convert(KITTI, tmp_path / "b", progress=False, max_frames=2, stamp_offset=offset)
    [(stamp, msg)] = [(s, m) for t, s, m in read_messages(tmp_path / "b", [T.LEFT_IMAGE])][1:]
    expected = 1_700_000_000_250_000_000 + round(load_sequence(KITTI, max_frames=2).times[1] * 1e9)
    assert stamp == expected
    assert msg.header.stamp.sec == expected // 10**9 and msg.header.stamp.nanosec == expected % 10**9


def test_missing_calib_names_file(tmp_path, capsys):
    src = _copy_clip(tmp_path / "kitti", 3, calib=False)
    with pytest.raises(KittiFormatError, match="calib.txt"):
        convert(src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    assert bag_cli.main(["bag", "from-kitti", str(src), str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "calib.txt" in err and "Traceback" not in err


def test_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(BagExistsError, match="overwrite"):
        convert(KITTI, out, progress=False, max_frames=1)
    assert (out / "keep.txt").read_text() == "old"
    assert bag_cli.main(["bag", "from-kitti", str(KITTI), str(out), "--max-frames", "1", "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    summary = convert(KITTI, out, storage="sqlite3", progress=False, max_frames=1, overwrite=True)
    assert summary["frames"] == 1 and not (out / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_leaves_no_half_bag(tmp_path):
    src = _copy_clip(tmp_path / "kitti", 5)
    (src / "image_0" / "000002.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    out = tmp_path / "bags" / "out"
    with pytest.raises(KittiFormatError, match="000002.png"):
        convert(src, out, progress=False)
    assert not out.exists()
    assert list((tmp_path / "bags").iterdir()) == []


def test_cli_info(tmp_path, capsys):
    out = tmp_path / "b"
    assert bag_cli.main(["bag", "from-kitti", str(KITTI), str(out), "--max-frames", "2", "--quiet"]) == 0
    assert "2 frames" in capsys.readouterr().out
    assert bag_cli.main(["bag", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{T.LEFT_IMAGE} [sensor_msgs/msg/Image] x2" in text and "transient_local" in text
    assert bag_cli.main(["bag", "info", str(tmp_path)]) == 2
    assert "metadata.yaml" in capsys.readouterr().err


def _image(arr: np.ndarray, encoding: str, step: int, bigendian: bool) -> SimpleNamespace:
    h, w = arr.shape[:2]
    rows = arr.reshape(h, -1).view(np.uint8)
    data = np.zeros((h, step), dtype=np.uint8)
    data[:, : rows.shape[1]] = rows
    return SimpleNamespace(encoding=encoding, height=h, width=w, step=step, is_bigendian=int(bigendian),
                           data=data.reshape(-1), header=None)


def test_image_to_numpy_step_and_endianness():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 80.0, (4, 6)).astype(np.float32)
    for big in (False, True):
        arr = depth.astype(">f4" if big else "<f4")
        out = image_to_numpy(_image(arr, "32FC1", 6 * 4 + 8, big))
        assert out.dtype == np.float32 and out.dtype.isnative
        np.testing.assert_array_equal(out, depth)
    rgb = rng.integers(0, 255, (3, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_numpy(_image(rgb, "rgb8", 5 * 3 + 1, False)), rgb)
    np.testing.assert_array_equal(image_to_numpy(_image(rgb, "bgr8", 5 * 3, False)), rgb)
    mono = rng.integers(0, 255, (3, 5), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_numpy(_image(mono, "mono8", 8, False)), mono)


def test_read_depth_images(tmp_path):
    """Write a small 32FC1 depth bag with rosbags and read it back in metres."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    Image, Header, Time = (ts.types[n] for n in ("sensor_msgs/msg/Image", "std_msgs/msg/Header",
                                                 "builtin_interfaces/msg/Time"))
    depth = np.arange(12, dtype=np.float32).reshape(3, 4) + 0.5
    with Writer(tmp_path / "d", version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as w:
        c = w.add_connection("/depth", "sensor_msgs/msg/Image", typestore=ts)
        for i in range(2):
            msg = Image(header=Header(stamp=Time(sec=i, nanosec=5), frame_id=T.LEFT_FRAME), height=3, width=4,
                        encoding="32FC1", is_bigendian=0, step=16, data=(depth * (i + 1)).view(np.uint8).reshape(-1))
            w.write(c, i * 10**9 + 5, ts.serialize_cdr(msg, c.msgtype))
    got = read_depth_images(tmp_path / "d", "/depth")
    assert [s for s, _ in got] == [5, 10**9 + 5]
    np.testing.assert_array_equal(got[1][1], depth * 2)
    assert got[0][1].dtype == np.float32


def test_colour_stereo_and_mono(tmp_path):
    """image_2/image_3 colour folders give rgb8 stereo; a folder without a right camera or
    poses.txt gives only the left topics (no /tf_static, no ground truth)."""
    rng = np.random.default_rng(1)
    src = tmp_path / "colour"
    for cam in ("image_2", "image_3"):
        (src / cam).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(src / cam / f"{i:06d}.png"), rng.integers(0, 255, (6, 8, 3), dtype=np.uint8))
    p2 = "100 0 4 0 0 100 3 0 0 0 1 0"
    (src / "calib.txt").write_text(f"P2: {p2}\nP3: 100 0 4 -50 0 100 3 0 0 0 1 0\n")
    (src / "times.txt").write_text("0.0\n0.1\n")
    s = convert(src, tmp_path / "c", progress=False)
    assert s["encoding"] == "rgb8" and s["baseline_m"] == pytest.approx(0.5)
    [(_, _, msg)] = list(read_messages(tmp_path / "c", [T.RIGHT_IMAGE]))[:1]
    bgr = cv2.imread(str(src / "image_3" / "000000.png"))
    np.testing.assert_array_equal(image_to_numpy(msg), bgr[:, :, ::-1])
    shutil.rmtree(src / "image_3")
    s = convert(src, tmp_path / "m", progress=False)
    assert s["topics"] == {T.LEFT_IMAGE: 2, T.LEFT_INFO: 2} and not s["stereo"] and not s["ground_truth"]
