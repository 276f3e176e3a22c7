"""The launch file, the parameter YAML and the nodes agree (launch_ros is not on PyPI, so the
launch file is checked statically; `vode run` starts the same nodes from the same YAML)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from rclpy.parameter import Parameter

from ros_helpers import ensure_rclpy

pytestmark = [pytest.mark.ros]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def nodes(models_dir):
    ensure_rclpy()
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode

    made = {"depth_node": DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir))]),
            "odometry_node": OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir))])}
    yield made
    for n in made.values():
        n.destroy_node()


def test_every_yaml_parameter_is_declared_with_a_description(nodes):
    cfg = yaml.safe_load((REPO / "config" / "vode.yaml").read_text())
    common = cfg["/**"]["ros__parameters"]
    for name, node in nodes.items():
        for key in {**common, **cfg[f"/**/{name}"]["ros__parameters"]}:
            assert node.has_parameter(key), f"{name} does not declare '{key}' from config/vode.yaml"
            assert node.describe_parameter(key).description, f"{name}.{key} has no description"


def test_launch_file_uses_declared_parameters_and_installed_executables(nodes):
    src = (REPO / "launch" / "vode.launch.py").read_text()
    ast.parse(src)
    setup = (REPO / "setup.py").read_text()
    for exe in re.findall(r'executable="(\w+)"', src):
        if exe != "rviz2":
            assert f"{exe} = vode_ros" in setup, f"launch starts '{exe}', which setup.py does not install"
    overrides = re.search(r"overrides = \{(.*?)\n    \}", src, re.S).group(1)
    for key in re.findall(r'"(\w+)":', overrides):
        if key != "use_sim_time":
            assert all(n.has_parameter(key) for n in nodes.values()), f"launch sets undeclared '{key}'"
    args = set(re.findall(r'DeclareLaunchArgument\("(\w+)"', src))
    assert {"mode", "model_dir", "image_topic", "camera_info_topic", "use_sim_time", "bag", "rviz"} <= args
    assert (REPO / "config" / "vode.rviz").is_file()


def test_every_number_parameter_carries_its_range_for_ros2_param_describe(nodes):
    # `ros2 param describe` shows the descriptor: a number without a range there tells a user nothing
    # of what the node accepts (test_ros2_cli.py reads it through the real CLI on a launched node).
    for name, node in nodes.items():
        for param in node._parameters.values():
            if param.type_ not in (Parameter.Type.INTEGER, Parameter.Type.DOUBLE):
                continue
            d = node.describe_parameter(param.name)
            ranges = d.integer_range if param.type_ == Parameter.Type.INTEGER else d.floating_point_range
            assert len(ranges) == 1, f"{name}.{param.name} ({param.type_.name}) has no range in its descriptor"
            assert ranges[0].from_value <= param.value <= ranges[0].to_value, f"{name}.{param.name}"
            assert d.description, f"{name}.{param.name} has no description"
