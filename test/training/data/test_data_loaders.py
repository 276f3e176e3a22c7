"""Data loaders: KITTI raw (calib, timestamps, Eigen scenes, split files), image folders, synthetic,
static-frame removal, scale-crop augmentation with K, colour jitter, data.kind dispatch."""

import cv2
import numpy as np
import pytest
import torch

from vode_training.config import ConfigError, load_config
from vode_training.data import build_dataset

W, H = 64, 64
FX, CX, CY, B = 73.8, 63.5, 31.5, 0.54


@pytest.fixture(scope="module")
def synth():
    from vode_training.data.synthetic import generate_sequence

    return generate_sequence(frames=8, width=128, height=64, color="rgb")


@pytest.fixture(scope="module")
def raw_root(synth, tmp_path_factory):
    """KITTI raw layout: one date folder, a training drive (0001) and an Eigen test drive (0002)."""
    root = tmp_path_factory.mktemp("raw")
    date = root / "2011_09_26"
    date.mkdir()
    k = synth.k
    p2 = [k[0, 0], 0, k[0, 2], 44.85, 0, k[1, 1], k[1, 2], 0.2164, 0, 0, 1, 0.00275]
    p3 = list(p2)
    p3[3] = 44.85 - k[0, 0] * synth.baseline
    (date / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\ncorner_dist: 9.950000e-02\nS_rect_02: 1.280000e+02 6.400000e+01\n"
        + "P_rect_02: " + " ".join(f"{v:.6e}" for v in p2) + "\n" + "P_rect_03: " + " ".join(f"{v:.6e}" for v in p3) + "\n")
    for drive in ("2011_09_26_drive_0001_sync", "2011_09_26_drive_0002_sync"):
        for cam, imgs in (("image_02", synth.left), ("image_03", synth.right)):
            d = date / drive / cam / "data"
            d.mkdir(parents=True)
            for i, img in enumerate(imgs):
                cv2.imwrite(str(d / f"{i:010d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            (date / drive / cam / "timestamps.txt").write_text(
                "".join(f"2011-09-26 13:02:{25 + i // 10:02d}.{(i % 10) * 100000000 + 964389:09d}\n" for i in range(len(imgs))))
    return root


def test_kitti_raw_drive_calibration_and_times(raw_root, synth):
    from vode_training.data.kitti_raw import load_drive, read_timestamps

    seq = load_drive(raw_root / "2011_09_26" / "2011_09_26_drive_0001_sync")
    assert len(seq) == 8 and seq.image_size == (128, 64) and seq.frame_ids == list(range(8))
    np.testing.assert_allclose(seq.k, synth.k, rtol=1e-6)
    assert seq.baseline == pytest.approx(synth.baseline, rel=1e-5)
    np.testing.assert_allclose(np.diff(seq.times), 0.1, atol=1e-6)
    t = read_timestamps(raw_root / "2011_09_26" / "2011_09_26_drive_0001_sync" / "image_02" / "timestamps.txt")
    assert t[0] == pytest.approx(1317042145.000964389, abs=1e-5)          # 2011-09-26 13:02:25.000964389 UTC


def test_kitti_raw_excludes_eigen_test_drives_and_reads_splits(raw_root, tmp_path):
    from vode_training.data.kitti_raw import eigen_test_scenes, raw_sequences, read_split

    scenes = eigen_test_scenes()
    assert len(scenes) == len(set(scenes)) == 28 and "2011_09_26_drive_0002" in scenes
    seqs, targets = raw_sequences(raw_root)
    assert [s.name for s in seqs] == ["2011_09_26/2011_09_26_drive_0001_sync"] and targets is None
    assert len(raw_sequences(raw_root, "all")[0]) == 2
    forms = {"monodepth2": "2011_09_26/2011_09_26_drive_0002_sync 3 l\n2011_09_26/2011_09_26_drive_0002_sync 5 r\n",
             "sfmlearner": "2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000003.png\n"
                           "2011_09_26/2011_09_26_drive_0002_sync/image_03/data/0000000005.png\n",
             "monodepth": "2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000003.jpg x/image_03/data/0000000003.jpg\n"
                          "2011_09_26/2011_09_26_drive_0002_sync/image_03/data/0000000005.jpg x/image_02/data/0000000005.jpg\n"}
    for name, text in forms.items():
        path = tmp_path / f"{name}.txt"
        path.write_text(text)
        assert read_split(path) == [("2011_09_26/2011_09_26_drive_0002_sync", 3, 2),
                                    ("2011_09_26/2011_09_26_drive_0002_sync", 5, 3)], name
    cfg = load_config(None, ["data.kind=kitti_raw", f"data.path={raw_root}", f"data.split={tmp_path / 'monodepth2.txt'}",
                             f"data.width={W}", f"data.height={H}", "data.color=rgb"])
    ds = build_dataset(cfg)
    assert [int(ds[i]["index"]) for i in range(len(ds))] == [3, 5]        # only the listed targets
    assert ds[0]["right"].shape == (3, H, W) and ds[0]["baseline"].item() == pytest.approx(0.54, rel=1e-5)


def test_image_folder_with_k_or_calib(synth, tmp_path):
    from vode_training.data.sequences import image_folder, read_intrinsics

    folder = tmp_path / "imgs"
    (folder / "images").mkdir(parents=True)
    for i, img in enumerate(synth.left):
        cv2.imwrite(str(folder / "images" / f"f{i:03d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    with pytest.raises(FileNotFoundError, match="K.txt"):
        image_folder(folder)
    (folder / "K.txt").write_text("\n".join(" ".join(str(v) for v in row) for row in synth.k))
    np.testing.assert_allclose(read_intrinsics(folder), synth.k)
    (folder / "K.txt").unlink()
    (folder / "calib.txt").write_text("P0: " + " ".join(str(v) for v in np.hstack([synth.k, np.zeros((3, 1))]).ravel()))
    np.testing.assert_allclose(read_intrinsics(folder), synth.k)
    seq = image_folder(folder)
    assert len(seq) == 8 and seq.image_size == (128, 64)
    ds = build_dataset(load_config(None, ["data.kind=image_folder", f"data.path={folder}", "data.stereo=false",
                                          f"data.width={W}", f"data.height={H}"]))
    assert len(ds) == 6 and ds[0]["K"][0, 0].item() == pytest.approx(synth.k[0, 0] / 2, rel=1e-5)
    with pytest.raises(ValueError, match="monocular"):
        build_dataset(load_config(None, ["data.kind=image_folder", f"data.path={folder}"]))
    # export reads two frames through KittiSnippets: it falls back to the image-folder loader
    from vode_training.data.kitti_snippets import KittiSnippets

    assert KittiSnippets(folder, W, H, "gray", offsets=(-1,), max_frames=3).left.shape == (3, 1, H, W)


def test_static_frames_removed():
    from vode_training.data.static_frames import keep_moving

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (64, 96), dtype=np.uint8), (5, 5), 0)
    frames = [np.roll(base, 3 * i, axis=1) for i in range(3)] + [np.roll(base, 6, axis=1)] * 2 + [np.roll(base, 9, axis=1)]
    assert keep_moving(frames, "flow", 1.0) == [0, 1, 2, 5]
    assert keep_moving(frames, "diff", 1.0) == [0, 1, 2, 5]
    assert keep_moving(frames, "none", 1.0) == list(range(6)) == keep_moving(frames, "flow", 0.0)
    slow = [np.roll(base, i, axis=1) for i in range(6)]                   # 1 px per frame: every 2nd kept at 1.5 px
    assert keep_moving(slow, "flow", 1.5) == [0, 2, 4]


def test_scale_crop_moves_pixels_as_k_says():
    from vode_training.data.augment import random_scale_crop

    k = torch.tensor([[50.0, 0, 40.3], [0, 48.0, 20.7], [0, 0, 1]])
    points = torch.tensor([[-1.5, -0.5, 4.0], [1.5, 0.6, 5.0], [0.0, 0.0, 8.0]])   # blobs 15+ px apart
    v, u = torch.meshgrid(torch.arange(48.0), torch.arange(80.0), indexing="ij")

    def blobs(kk):
        pix = (kk @ points.T).T
        pix = pix[:, :2] / pix[:, 2:]
        img = sum(torch.exp(-((u - p[0]) ** 2 + (v - p[1]) ** 2) / (2 * 1.5 ** 2)) for p in pix)
        return img[None], pix

    img, _ = blobs(k)
    torch.manual_seed(0)
    for _ in range(3):
        (out,), k2 = random_scale_crop([img], k, 0.15)
        _, expected = blobs(k2)
        for p in expected:                                               # the blob centroid sits where K' projects
            ui, vi = int(round(p[0].item())), int(round(p[1].item()))
            win = out[0, vi - 6:vi + 7, ui - 6:ui + 7]
            cu = (win * u[vi - 6:vi + 7, ui - 6:ui + 7]).sum() / win.sum()
            cv = (win * v[vi - 6:vi + 7, ui - 6:ui + 7]).sum() / win.sum()
            assert abs(cu - p[0]) < 0.05 and abs(cv - p[1]) < 0.05, (cu, cv, p)
        assert k2[0, 0] >= k[0, 0] and k2[1, 1] >= k[1, 1]


def test_augmentation_in_batches(tmp_path):
    from vode_training.data.synthetic import write_kitti_layout

    scene = write_kitti_layout(tmp_path / "rgb", frames=5, width=128, height=64, color="rgb")
    base = ["data.kind=synthetic", f"data.path={scene}", f"data.width={W}", f"data.height={H}", "data.color=rgb",
            "data.stereo=true"]
    plain = build_dataset(load_config(None, base + ["data.augment=false"]))[0]
    torch.manual_seed(0)
    jit = build_dataset(load_config(None, base + ["data.saturation=0.5", "data.hue=0.1"]))[0]
    assert torch.equal(jit["tgt"], plain["tgt"]) and not torch.equal(jit["tgt_in"], plain["tgt"])
    torch.manual_seed(0)
    sc = build_dataset(load_config(None, base + ["data.scale_crop=0.15", "data.brightness=0.0", "data.contrast=0.0"]))[0]
    assert torch.allclose(sc["tgt_in"], sc["tgt"], atol=1e-6) and not torch.equal(sc["tgt"], plain["tgt"])
    assert sc["K"][0, 0] > plain["K"][0, 0] and sc["right"].shape == plain["right"].shape
    assert torch.equal(plain["baseline"], sc["baseline"])


def test_synthetic_kind_renders_once_and_config_checks(tmp_path):
    path = tmp_path / "synth"
    cfg = load_config(None, ["data.kind=synthetic", f"data.path={path}", f"data.width={W}", f"data.height={H}",
                             "data.synthetic={frames: 6, seed: 3}"])
    ds = build_dataset(cfg)
    assert len(ds) == 4 and (path / "synthetic.json").is_file() and "gt_src_tgt" in ds[0]
    stamp = (path / "calib.txt").stat().st_mtime_ns
    build_dataset(cfg)
    assert (path / "calib.txt").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="data.kind"):
        load_config(None, ["data.kind=video"])
    with pytest.raises(ConfigError, match="static_filter"):
        load_config(None, ["data.static_filter=optical"])
    with pytest.raises(ConfigError, match="image_topic"):
        load_config(None, ["data.kind=rosbag"])


def test_max_stride_per_sequence_in_a_mixed_set(tmp_path):
    """data.max_stride as a list: each folder draws its strides up to its own limit (a desk camera
    needs longer strides than a car); a list that does not match data.paths is refused by name."""
    from vode_training.data.synthetic import write_kitti_layout

    for name in ("slow", "fast"):
        write_kitti_layout(tmp_path / name, frames=12, width=128, height=64, color="gray")
    base = ["data.kind=kitti_odometry", f"data.root={tmp_path}", "data.paths=[slow, fast]", f"data.width={W}",
            f"data.height={H}", "data.stereo=false"]
    ds = build_dataset(load_config(None, base + ["data.max_stride=[4, 1]"]))
    torch.manual_seed(0)
    strides = {"slow": set(), "fast": set()}
    for _ in range(3):
        for i, (seq_i, _) in enumerate(ds.items):
            strides[ds.sequences[seq_i].name].add(int(ds[i]["stride"]))
    assert strides["fast"] == {1} and strides["slow"] == {1, 2, 3, 4}
    with pytest.raises(ConfigError, match="one value per data.paths entry"):
        load_config(None, base + ["data.max_stride=[4, 1, 2]"])
    with pytest.raises(ConfigError, match="data.max_stride"):
        load_config(None, base + ["data.max_stride=[4, 0]"])
