"""Sensor-depth supervision: depth_0/ maps follow the snippet's augmentation exactly (scale-crop,
flip), the supervised term pulls only where the sensor reads, and a run with it records metres."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vode_training.data.kitti_snippets import KittiSnippets
from vode_training.geometry import inverse_warp
from vode_training.losses.photometric import photometric_error
from vode_training.losses.sensor_depth import sensor_depth_loss


@pytest.fixture(scope="module")
def rgbd_folder(tmp_path_factory) -> Path:
    """A synthetic street in KITTI layout whose exact depth is stored as a depth sensor's depth_0/ PNGs."""
    from vode_training.data.synthetic import SynthConfig, write_kitti_layout

    root = tmp_path_factory.mktemp("rgbd")
    write_kitti_layout(root, cfg=SynthConfig(frames=6, width=192, height=64, speed=0.5))
    (root / "depth_0").mkdir()
    for npy in sorted((root / "depth").glob("*.npy")):
        metres = np.load(npy)
        cv2.imwrite(str(root / "depth_0" / f"{npy.stem}.png"), np.clip(metres * 256, 0, 65535).astype(np.uint16))
    return root


def _warp_error(item: dict[str, torch.Tensor], depth: torch.Tensor) -> float:
    """Mean photometric error of the first source warped into the target with ``depth`` (1, H, W)."""
    has = depth > 0
    warped, valid = inverse_warp(item["src"][0][None], torch.where(has, depth, torch.ones_like(depth))[None],
                                 item["gt_src_tgt"][0][None], item["K"][None])
    err = photometric_error(warped, item["tgt"][None])[0]
    return float(err[has & (valid[0] > 0)].mean())


def test_sensor_depth_follows_scale_crop_and_flip(rgbd_folder):
    plain = KittiSnippets(rgbd_folder, 192, 64, offsets=(-1, 1), sensor_depth=True)
    augmented = KittiSnippets(rgbd_folder, 192, 64, offsets=(-1, 1), sensor_depth=True, augment=True,
                              scale_crop=0.3, flip=True, brightness=0.0, contrast=0.0)
    assert plain[2]["sensor_depth"].shape == (1, 64, 192)
    assert float((plain[2]["sensor_depth"] > 0).float().mean()) > 0.5
    base = _warp_error(plain[2], plain[2]["sensor_depth"])
    torch.manual_seed(3)
    for _ in range(6):
        item = augmented[2]
        err = _warp_error(item, item["sensor_depth"])
        assert err < 1.5 * base + 0.02, "the sensor depth no longer matches the augmented image"
        shifted = torch.roll(item["sensor_depth"], 6, dims=-1)                 # a depth map off by 6 px
        assert _warp_error(item, shifted) > err


def test_items_without_a_sensor_get_zeros_and_count_nothing(kitti_dir):
    ds = KittiSnippets(kitti_dir, 128, 64, offsets=(-1, 1), sensor_depth=True, max_frames=4)
    depth = ds[1]["sensor_depth"]
    assert depth.shape == (1, 64, 128) and float(depth.abs().max()) == 0.0
    pred = torch.rand(2, 1, 64, 128) + 0.5
    assert float(sensor_depth_loss(pred, torch.zeros_like(pred), 0.1, 20.0)) == 0.0


def test_sensor_depth_loss_is_the_log_ratio_where_the_sensor_reads():
    gt = torch.full((1, 1, 4, 4), 2.0)
    gt[..., :2, :] = 0.0                                          # half the pixels without a reading
    pred = torch.full_like(gt, 2.0)
    pred[..., :2, :] = 50.0                                       # wrong only where the sensor is blind
    assert float(sensor_depth_loss(pred, gt, 0.1, 20.0)) == pytest.approx(0.0, abs=1e-6)
    pred[..., 2:, :] = 2.0 * 1.1
    assert float(sensor_depth_loss(pred, gt, 0.1, 20.0)) == pytest.approx(np.log(1.1), rel=1e-5)


def test_a_run_with_sensor_depth_trains_and_records_metres(rgbd_folder, tmp_path, tiny_nets):
    from vode_training.config import load_config
    from vode_training.data import training_cameras
    from vode_training.methods import build_method

    cfg = load_config(None, [f"data.path={rgbd_folder}", "data.width=192", "data.height=64", "data.stereo=false",
                             "data.sensor_depth=true", "loss.sensor_depth_weight=1.0", "train.batch_size=2"]
                      + tiny_nets)
    assert training_cameras(cfg)[0]["metric"]
    method = build_method(cfg, channels=1)
    assert "sensor_depth" in [t.name for t in method.terms]
    assert method.export_info()["metric_scale"]
    ds = KittiSnippets(rgbd_folder, 192, 64, offsets=(-1, 1), sensor_depth=True)
    batch = torch.utils.data.default_collate([ds[1], ds[2]])
    total, terms, _ = method.compute_loss(batch)
    assert float(terms["sensor_depth"].detach()) > 0
    total.backward()
    grads = [p.grad for p in method.nets["depth"].parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_sensor_depth_weight_without_the_data_is_refused():
    from vode_training.config import load_config
    from vode_training.methods import build_method

    cfg = load_config(None, ["data.stereo=false", "loss.sensor_depth_weight=1.0"])
    with pytest.raises(ValueError, match="data.sensor_depth"):
        build_method(cfg, channels=1)


def test_the_trusted_focal_length_is_the_depth_sensor_cameras():
    """A depth sensor pins the depth net's metres on its camera; a camera with poses only reaches the
    depth through the pose net. vode.train_fx, by which the run time rescales metric depth, must be
    the sensor camera's even where the posed camera has more frames."""
    from vode_training.export import _camera_metadata

    cameras = [{"name": "rgbd", "frames": 500, "fx": 234.0, "hfov_deg": 57.4, "metric": True,
                "scale_sources": ["sensor_depth", "poses"]},
               {"name": "desk", "frames": 736, "fx": 143.2, "hfov_deg": 83.6, "metric": True,
                "scale_sources": ["poses"]},
               {"name": "drone", "frames": 211, "fx": 243.4, "hfov_deg": 55.5, "metric": False, "scale_sources": []}]
    meta = _camera_metadata(cameras, "indoor")
    assert float(meta["vode.train_fx"]) == pytest.approx(234.0)
    assert meta["vode.train_hfov_deg"] == "[57.4, 83.6]"          # the trusted range: every metric camera
    posed_only = [dict(c, scale_sources=[s for s in c["scale_sources"] if s == "poses"]) for c in cameras]
    assert float(_camera_metadata(posed_only, "indoor")["vode.train_fx"]) == pytest.approx(143.2)
