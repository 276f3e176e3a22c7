"""Shared fixtures. ROS tests run on a private, machine-local DDS domain per test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "kitti_odometry_06_0000-0050"
MODELS = Path(os.environ.get("VODE_TEST_MODELS") or REPO / "models")

# Before any rclpy import: isolate from other sessions and from robots on the network.
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


@pytest.fixture(scope="session")
def kitti_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def models_dir() -> Path:
    assert (MODELS / "depth.onnx").is_file(), "shipped models/depth.onnx is missing"
    return MODELS
