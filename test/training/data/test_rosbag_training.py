"""Training straight from a rosbag2: frames + CameraInfo intrinsics + stereo baseline, static frames
skipped, `vode train --bag ... --init DIR` and `vode export` recording the bag in vode.trained_on."""
import shutil

import numpy as np
import pytest
import torch

from vode_training.config import load_config

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
    from vode_training.trainer import export_nets, load_checkpoint, save_checkpoint

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
