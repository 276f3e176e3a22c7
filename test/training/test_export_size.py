"""`vode export --size WxH`: the same convolutional weights at another input size, so a camera of
another aspect ratio (a square one) is not squashed into the training size; the run time reads it."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import TINY_NETS

pytestmark = [pytest.mark.needs_data]


def test_export_at_a_square_size_keeps_the_aspect_and_runs(tmp_path, kitti_dir):
    import torch

    from vode_ros.cli.main import main
    from vode_ros.runtime.inference import DepthNet, OnnxModel
    from vode_training.checkpoint import save_checkpoint
    from vode_training.config import load_config
    from vode_training.methods import build_method

    torch.manual_seed(0)
    cfg = load_config(None, ["data.width=128", "data.height=64", f"data.path={kitti_dir}", "data.max_frames=4"]
                      + TINY_NETS)
    ckpt = save_checkpoint(tmp_path / "c.pt", build_method(cfg, channels=1), None, 0, cfg)
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "sq"), "--size", "96x96"]) == 0
    depth = OnnxModel(tmp_path / "sq" / "depth.onnx", expected_kind="depth")
    pose = OnnxModel(tmp_path / "sq" / "pose.onnx", expected_kind="pose")
    assert (depth.meta.width, depth.meta.height) == (96, 96) and (pose.meta.width, pose.meta.height) == (96, 96)
    assert depth.meta.raw["vode.train_input_size"] == "128x64"
    square = (np.random.default_rng(0).random((512, 512)) * 255).astype(np.uint8)
    k = np.array([[200.0, 0, 256], [0, 200.0, 256], [0, 0, 1]])
    k_net = depth.intrinsics_for_net(k, (512, 512))
    assert k_net[0, 0] == pytest.approx(k_net[1, 1])          # not squashed: one focal length
    out = DepthNet(depth)(depth.preprocess(square, "mono8"), fx=float(k_net[0, 0]))
    assert out.shape == (96, 96) and np.isfinite(out).all()
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "bad"), "--size", "100x96"]) == 2
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "bad"), "--size", "square"]) == 2
