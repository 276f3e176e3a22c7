"""Training straight from a rosbag2: frames + CameraInfo intrinsics + stereo baseline, static frames
skipped, `vode train --bag ... --init DIR` and `vode export` recording the bag in vode.trained_on."""
import shutil

import numpy as np
import pytest
import torch

from vode_training.config import load_config

pytestmark = [pytest.mark.slow]

W, H = 64, 64
TINY_NETS = ["model.depth_enc_channels=[8, 16, 16, 32, 32]", "model.depth_dec_channels=[8, 8, 16, 16, 32]",
             "model.pose_channels=[8, 16, 16, 32, 32, 32, 32]"]
LEFT, RIGHT = "/camera/left/image_raw", "/camera/right/image_raw"


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    """A 10-frame synthetic stereo sequence whose frames 4 and 5 repeat frame 3 (car stopped), as mcap and sqlite3."""
    from vode_ros.bag.kitti_to_bag import convert
    from vode_training.data.synthetic import write_kitti_layout

    root = tmp_path_factory.mktemp("bag")
    kitti = write_kitti_layout(root / "kitti", frames=10, width=128, height=64)
    for cam in ("image_0", "image_1"):
        for i in (4, 5):
            shutil.copy(kitti / cam / "000003.png", kitti / cam / f"{i:06d}.png")
    out = {}
    for storage in ("mcap", "sqlite3"):
        convert(kitti, root / f"bag_{storage}", storage=storage, progress=False)
        out[storage] = root / f"bag_{storage}"
    out["kitti"] = kitti
    return out


def test_load_bag_frames_intrinsics_and_baseline(bags):
    from vode_ros.core.kitti import load_sequence, read_image
    from vode_training.data.rosbag_frames import load_bag

    ref = load_sequence(bags["kitti"])
    for bag in (bags["mcap"], next(bags["sqlite3"].glob("*.db3"))):        # the folder, or the file inside it
        seq = load_bag(bag, LEFT, right_topic=RIGHT)
        assert len(seq) == 10 and seq.image_size == (128, 64)
        np.testing.assert_allclose(seq.k, ref.k, atol=1e-9)               # CameraInfo k
        assert seq.baseline == pytest.approx(ref.baseline, abs=1e-9)      # right P[0, 3] = -fx b
        assert np.array_equal(seq.left[7], read_image(ref.left[7])) and np.array_equal(seq.right[2], read_image(ref.right[2]))
        np.testing.assert_allclose(np.diff(seq.times), 0.1, atol=1e-6)
    small = load_bag(bags["mcap"], LEFT, size=(W, 32), max_frames=4)
    assert len(small) == 4 and small.left[0].shape == (32, W) and small.right is None
    assert small.k[0, 0] == pytest.approx(ref.k[0, 0] / 2) and small.k[0, 2] == pytest.approx((ref.k[0, 2] + 0.5) / 2 - 0.5)


def test_missing_topic_names_what_the_bag_has(bags):
    from vode_training.data.rosbag_frames import BagDataError, load_bag

    with pytest.raises(BagDataError, match=r"no image topic '/nope'.*/camera/left/image_raw"):
        load_bag(bags["mcap"], "/nope")
    with pytest.raises(BagDataError, match="CameraInfo"):
        load_bag(bags["mcap"], LEFT, info_topic="/camera/left/info")


def test_rosbag_dataset_skips_static_frames(bags):
    from vode_training.data import build_dataset

    cfg = load_config(None, ["data.kind=rosbag", f"data.path={bags['mcap']}", f"data.image_topic={LEFT}",
                             f"data.right_topic={RIGHT}", f"data.width={W}", f"data.height={H}",
                             "data.static_filter=flow", "data.static_threshold=0.5"])
    ds = build_dataset(cfg)
    assert ds.sequences[0].frame_ids == [0, 1, 2, 3, 6, 7, 8, 9]           # the two standing frames dropped
    item = ds[2]
    assert item["right"].shape == (1, H, W) and item["baseline"].item() == pytest.approx(0.54, abs=1e-6)
    assert int(item["index"]) == 3 and item["K"][0, 0].item() == pytest.approx(0.5767 * 128 * W / 128, rel=1e-3)
    keep_all = build_dataset(load_config(cfg, ["data.static_filter=none"]))
    assert len(keep_all.sequences[0]) == 10


def test_vode_train_from_bag_with_init_folder_then_export(bags, tmp_path):
    import onnx

    from vode_ros.cli.main import main
    from vode_training.methods import build_method
    from vode_training.checkpoint import export_nets, load_checkpoint, save_checkpoint

    # a tiny "shipped" model: nets-only checkpoint in a folder, as models/sfmlearner_driving.pt
    cfg0 = load_config(None, [f"data.width={W}", f"data.height={H}", "train.num_threads=1", "train.image_every=0",
                              "train.batch_size=2", "train.log_every=1"] + TINY_NETS)
    torch.manual_seed(0)
    full = save_checkpoint(tmp_path / "full.pt", build_method(cfg0, 1), None, 300, cfg0)
    init_dir = tmp_path / "models"
    export_nets(full, init_dir / "sfmlearner_tiny.pt")
    assert set(torch.load(init_dir / "sfmlearner_tiny.pt", weights_only=True)) >= {"models", "config"}

    out = tmp_path / "run"
    rc = main(["train", "--bag", str(bags["mcap"]), "--image-topic", LEFT, "--right-topic", RIGHT,
               "--init", str(init_dir), "--set", "train.steps=2", "--out", str(out), "--no-progress"])
    assert rc == 0
    ckpt = load_checkpoint(out / "checkpoint.pt")
    d = ckpt["config"]["data"]
    assert (d["kind"], d["image_topic"], d["right_topic"], d["stereo"], d["static_filter"]) == (
        "rosbag", LEFT, RIGHT, True, "flow")
    assert ckpt["config"]["train"]["init"] == str(init_dir / "sfmlearner_tiny.pt")
    assert ckpt["config"]["model"]["depth_enc_channels"] == [8, 16, 16, 32, 32]    # the init checkpoint's config
    assert main(["export", "--checkpoint", str(out / "checkpoint.pt"), "--out", str(tmp_path / "onnx")]) == 0
    for kind in ("depth", "pose"):
        meta = {p.key: p.value for p in onnx.load(str(tmp_path / "onnx" / f"{kind}.onnx")).metadata_props}
        trained_on = meta["vode.trained_on"]
        assert str(bags["mcap"].resolve()) in trained_on and f"image={LEFT}" in trained_on
        assert f"right={RIGHT}" in trained_on and "fine-tuned from sfmlearner_tiny.pt" in trained_on
    # mono from the sqlite3 bag, no --config and no --init: the default config
    assert main(["train", "--bag", str(bags["sqlite3"]), "--image-topic", LEFT, "--set", "train.steps=1",
                 "--set", f"data.width={W}", "--set", f"data.height={H}", "--set", "train.batch_size=2",
                 "--set", "train.image_every=0", "--set", "train.num_threads=1", *sum((["--set", s] for s in TINY_NETS), []),
                 "--out", str(tmp_path / "mono"), "--no-progress"]) == 0
    assert load_checkpoint(tmp_path / "mono" / "checkpoint.pt")["config"]["data"]["stereo"] is False


def _write_camera_bag(path, frames: list[np.ndarray], info: dict) -> None:
    """A mono rosbag2 (mcap) of `frames` on LEFT with one CameraInfo (fields from `info`) per frame."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    t = ts.types
    with Writer(path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as w:
        c_img = w.add_connection(LEFT, "sensor_msgs/msg/Image", typestore=ts)
        c_info = w.add_connection("/camera/left/camera_info", "sensor_msgs/msg/CameraInfo", typestore=ts)
        for i, img in enumerate(frames):
            stamp = 10**9 + i * 10**8
            header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=stamp // 10**9,
                                                                                       nanosec=stamp % 10**9),
                                              frame_id="camera_left_optical_frame")
            cam = t["sensor_msgs/msg/CameraInfo"](
                header=header, height=img.shape[0], width=img.shape[1], distortion_model=info["model"],
                d=np.asarray(info["d"], float), k=info["k"].reshape(9), r=np.eye(3).reshape(9), p=info["p"].reshape(12),
                binning_x=0, binning_y=0, roi=t["sensor_msgs/msg/RegionOfInterest"](
                    x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            msg = t["sensor_msgs/msg/Image"](header=header, height=img.shape[0], width=img.shape[1], encoding="mono8",
                                            is_bigendian=0, step=img.shape[1], data=img.reshape(-1))
            w.write(c_info, stamp, ts.serialize_cdr(cam, c_info.msgtype))
            w.write(c_img, stamp, ts.serialize_cdr(msg, c_img.msgtype))


def _as_camera(img: np.ndarray, k: np.ndarray, k_new: np.ndarray) -> np.ndarray:
    """The image of camera k as camera k_new (same centre of projection) sees it."""
    import cv2

    return cv2.warpPerspective(img, k_new @ np.linalg.inv(k), (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR)


def test_raw_distorted_bag_is_rectified_like_the_nodes_do(bags, tmp_path):
    """a bag of raw images (barrel D, P with its own focal length) | frames come out rectified (close to the
    pinhole images, where data.rectify=off leaves them far off) with P's intrinsics; a model with the wrong
    number of coefficients stops with the way out"""
    from camera_helpers import calibration, raw_from_rectified

    from vode_ros.core.kitti import load_sequence, read_image
    from vode_training.data.rosbag_frames import BagDataError, load_bag

    ref = load_sequence(bags["kitti"], max_frames=3)
    k_new = ref.k.copy()
    k_new[0, 0] *= 0.95
    k_new[1, 1] *= 0.95
    p = np.hstack([k_new, np.zeros((3, 1))])
    d = (-0.3, 0.08, 0.0, 0.0, 0.0)
    cal = calibration(ref.k, ref.image_size, d, p=p)
    pinhole = [read_image(f) for f in ref.left]
    # the pinhole frames as the rectified camera (K') sees them: resample K -> K' first
    rect = [_as_camera(img, ref.k, k_new) for img in pinhole]
    raw = [raw_from_rectified(img, cal)[0] for img in rect]
    _write_camera_bag(tmp_path / "raw", raw, {"model": "plumb_bob", "d": d, "k": ref.k, "p": p})
    seq = load_bag(tmp_path / "raw", LEFT)
    np.testing.assert_allclose(seq.k, k_new, atol=1e-9)
    inner = (slice(6, -6), slice(6, -6))
    err = float(np.mean([np.abs(a[inner].astype(float) - b[inner]).mean() for a, b in zip(seq.left, rect)]))
    as_is = load_bag(tmp_path / "raw", LEFT, rectify="off")
    far = float(np.mean([np.abs(a[inner].astype(float) - b[inner]).mean() for a, b in zip(as_is.left, rect)]))
    assert err < 0.25 * far, (err, far)            # measured: 2.1 vs 15.1 grey levels
    _write_camera_bag(tmp_path / "bad", raw, {"model": "plumb_bob", "d": d[:3], "k": ref.k, "p": p})
    with pytest.raises(BagDataError, match=r"takes 5 coefficients.*data.rectify=off"):
        load_bag(tmp_path / "bad", LEFT)

