"""Shared fixtures. ROS tests run on a private, machine-local DDS domain per test session.

Markers (pytest.ini): each test module marks itself with ``pytestmark`` (slow, ros, needs_*), a
single test with a decorator; ``pytest -m "not slow"`` is the fast unit run, ``-m "not ros"`` runs
without rclpy. The needs_* markers skip a test when what it reads is not there (below)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "kitti_odometry_06_0000-0050"
MODELS = Path(os.environ.get("VODE_TEST_MODELS") or REPO / "models")

# Before any rclpy import: isolate from other test runs and from robots on the network.
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


# Training runs in the tests: nets small enough for two CPU steps in seconds (DepthNet 'small' and
# PoseNet channel lists), and a few frames of the KITTI clip at 128x64.
TINY_NETS = ["model.depth_enc_channels=[8, 16, 16, 32, 32]", "model.depth_dec_channels=[8, 8, 16, 16, 32]",
             "model.pose_channels=[8, 16, 16, 32, 32, 32, 32]"]
TINY_TRAIN = [f"data.path={DATA}", "data.width=128", "data.height=64", "data.max_frames=8", "train.batch_size=2",
              "train.steps=2", "train.log_every=1", "train.num_threads=1"] + TINY_NETS

# Markers that skip a test when what it reads is not there (a checkout without the clip or models).
NEEDS = {
    "needs_data": ([DATA / "image_0"], "KITTI demo clip not present"),
    "needs_stereo_data": ([DATA / "image_1"], "KITTI stereo demo clip not present"),
    "needs_models": ([MODELS / "depth.onnx", MODELS / "pose.onnx"],
                     f"no exported models in {MODELS} (depth.onnx + pose.onnx); ship them in models/ or set "
                     "VODE_TEST_MODELS=DIR"),
}


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    """The source tree (config/, launch/, data/, models/ ...)."""
    return REPO


@pytest.fixture(scope="session")
def kitti_dir() -> Path:
    """The shipped KITTI clip (data/kitti_odometry_06_0000-0050); mark a test needs_data to skip without it."""
    return DATA


@pytest.fixture(scope="session")
def models_dir() -> Path:
    assert (MODELS / "depth.onnx").is_file(), "shipped models/depth.onnx is missing"
    return MODELS


@pytest.fixture(scope="session")
def tiny_nets() -> list[str]:
    """Config overrides for tiny DepthNet / PoseNet channel lists."""
    return list(TINY_NETS)


@pytest.fixture(scope="session")
def tiny_train() -> list[str]:
    """Config overrides for a two-step training on 8 frames of the KITTI clip at 128x64 with tiny nets."""
    return list(TINY_TRAIN)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for name, (paths, reason) in NEEDS.items():
        if item.get_closest_marker(name) and not all(p.exists() for p in paths):
            pytest.skip(reason)
