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


# Markers by module: `pytest -m "not slow"` is the fast unit run, `-m "not ros"` runs without rclpy.
# A test module may also set `pytestmark` itself; these lists cover the modules that train,
# export or run the nodes end to end.
SLOW_MODULES = {
    "test_adaptation", "test_bench", "test_demo", "test_distributed", "test_export", "test_method_deep_vo_feat",
    "test_method_geonet", "test_method_lkvo", "test_method_rnn_mvod", "test_method_undeepvo",
    "test_nodes_cross_process", "test_nodes_features", "test_nodes_inprocess", "test_recurrent_runtime",
    "test_resume", "test_rosbag_training", "test_sfmlearner_paper", "test_train_step", "test_eval_cli",
}
ROS_MODULES = {
    "test_adaptation", "test_bench", "test_demo", "test_nodes_cross_process", "test_nodes_features",
    "test_nodes_inprocess", "test_launch_and_config",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if name in ROS_MODULES:
            item.add_marker(pytest.mark.ros)
