"""The nodes as managed (lifecycle) nodes, driven over DDS through their lifecycle services as
`ros2 lifecycle set` or a lifecycle manager would: with autostart:=false a node waits
unconfigured; configure loads the model, activate subscribes to the camera, deactivate stops
taking images, cleanup releases everything so that a changed start-up parameter takes effect at
the next configure, and a configure that fails says why and leaves the node unconfigured."""
from __future__ import annotations

import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rcl_interfaces.srv import SetParameters

from vode_ros.core.kitti import load_sequence, read_image

from ros_helpers import Harness, ensure_rclpy

pytestmark = [pytest.mark.ros]

CAMERA = "/camera/left/image_raw"


@pytest.fixture(scope="module")
def seq(kitti_dir):
    return load_sequence(kitti_dir, max_frames=3)


# The state each transition leads to when it succeeds.
REACHES = {Transition.TRANSITION_CONFIGURE: "inactive", Transition.TRANSITION_ACTIVATE: "active",
           Transition.TRANSITION_DEACTIVATE: "inactive", Transition.TRANSITION_CLEANUP: "unconfigured"}


def _call(client, request, timeout: float = 10.0):
    """One service call; None when no answer came (DDS may lose the first reply to a client whose
    reply reader the server has not matched yet, although the service already shows as available)."""
    try:
        return client.call(request, timeout_sec=timeout)
    except TimeoutError:
        return None


class Lifecycle:
    """A client of one node's lifecycle and parameter services, on the harness's probe node."""

    def __init__(self, h: Harness, node_name: str):
        self.change = h.probe.create_client(ChangeState, f"/{node_name}/change_state")
        self.get = h.probe.create_client(GetState, f"/{node_name}/get_state")
        self.set_params = h.probe.create_client(SetParameters, f"/{node_name}/set_parameters")
        assert all(c.wait_for_service(timeout_sec=30) for c in (self.change, self.get, self.set_params))

    def state(self) -> str:
        for _ in range(3):            # asking twice is harmless
            res = _call(self.get, GetState.Request())
            if res is not None:
                return res.current_state.label
        raise AssertionError("no answer from get_state")

    def transition(self, transition_id: int) -> bool:
        res = _call(self.change, ChangeState.Request(transition=Transition(id=transition_id)), 30.0)
        if res is None:               # a transition must not be asked twice: see where the node is
            return self.state() == REACHES[transition_id]
        return res.success

    def set(self, name: str, value) -> bool:
        req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        for _ in range(3):            # setting a value twice is harmless
            res = _call(self.set_params, req)
            if res is not None:
                return res.results[0].successful
        raise AssertionError("no answer from set_parameters")


def _depth_node(models_dir, **params):
    from vode_ros.nodes.depth_node import DepthNode

    overrides = [Parameter("model_dir", value=str(models_dir)), Parameter("autostart", value=False)]
    return DepthNode(parameter_overrides=overrides + [Parameter(k, value=v) for k, v in params.items()])


def test_a_managed_depth_node_goes_through_its_states(models_dir, seq):
    ensure_rclpy()
    node = _depth_node(models_dir)
    h = Harness([node])
    try:
        life = Lifecycle(h, "depth_node")
        assert life.state() == "unconfigured" and node.model is None
        assert h.probe.count_subscribers(CAMERA) == 0

        assert life.transition(Transition.TRANSITION_CONFIGURE) and life.state() == "inactive"
        assert node.model is not None
        assert h.probe.count_subscribers(CAMERA) == 0        # configured, not yet taking images
        assert h.wait_for(lambda: any("inactive" in s.message for d in h.got["diag"] for s in d.status), 5.0)

        assert life.transition(Transition.TRANSITION_ACTIVATE) and life.state() == "active"
        assert h.wait_connected()
        h.publish_frame(read_image(seq.left[0]), "mono8", seq.k, 1.0)
        assert h.wait_for(lambda: len(h.got["depth"]) == 1, 20.0)

        assert life.transition(Transition.TRANSITION_DEACTIVATE) and life.state() == "inactive"
        assert h.wait_for(lambda: h.image_pub.get_subscription_count() == 0, 10.0)
        frames_in = node.frames_in
        h.publish_frame(read_image(seq.left[1]), "mono8", seq.k, 1.1)
        assert not h.wait_for(lambda: node.frames_in > frames_in, 1.0)
        assert len(h.got["depth"]) == 1

        # A start-up parameter is refused while configured and taken between cleanup and configure.
        assert not life.set("image_topic", "/other_camera/image_raw")
        assert life.transition(Transition.TRANSITION_CLEANUP) and life.state() == "unconfigured"
        assert node.model is None and h.probe.count_publishers("/depth/image") == 0
        assert life.set("image_topic", "/other_camera/image_raw")
        assert life.transition(Transition.TRANSITION_CONFIGURE)
        assert life.transition(Transition.TRANSITION_ACTIVATE)
        assert h.wait_for(lambda: h.probe.count_subscribers("/other_camera/image_raw") == 1, 10.0)
        assert h.probe.count_subscribers(CAMERA) == 0
        # Live parameters work again after the second configure, applied once.
        assert life.set("stereo_slop", 0.05) and node.inputs.pairer.slop == 0.05
    finally:
        h.close()


def test_a_failed_configure_says_why_and_can_be_retried(models_dir, tmp_path):
    """lifecycle configure with no model in model_dir (autostart false) | the transition fails, the error
    names the folder, nothing half-built is left, the node stays unconfigured; set model_dir and
    configure again
    """
    ensure_rclpy()
    node = _depth_node(tmp_path / "no_models_here")
    h = Harness([node])
    try:
        life = Lifecycle(h, "depth_node")
        assert not life.transition(Transition.TRANSITION_CONFIGURE)
        assert life.state() == "unconfigured"
        assert "no_models_here" in str(node.configure_error)
        assert h.probe.count_publishers("/depth/image") == 0       # nothing half-built is left behind
        assert life.set("model_dir", str(models_dir))
        assert life.transition(Transition.TRANSITION_CONFIGURE) and life.state() == "inactive"
    finally:
        h.close()


def test_autostart_is_the_default_and_a_bad_model_still_fails_at_construction(models_dir, tmp_path):
    ensure_rclpy()
    from vode_ros.nodes.odometry_node import OdometryNode
    from vode_ros.runtime.inference import ModelLoadError

    node = OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir))])
    try:
        assert node.lifecycle_state == "active"
    finally:
        node.destroy_node()
    with pytest.raises(ModelLoadError, match="no_models_here"):
        OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(tmp_path / "no_models_here"))])


def test_vode_run_without_autostart_waits_for_a_lifecycle_manager(models_dir):
    """`vode run --no-autostart` in its own process: both nodes unconfigured until told over DDS."""
    import subprocess
    import sys
    from pathlib import Path

    ensure_rclpy()
    proc = subprocess.Popen([sys.executable, "-m", "vode_ros.cli.main", "run", "--no-autostart",
                             "--model-dir", str(models_dir)], cwd=str(Path(__file__).resolve().parents[2]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    h = Harness()
    try:
        depth, odom = Lifecycle(h, "depth_node"), Lifecycle(h, "odometry_node")
        assert depth.state() == odom.state() == "unconfigured"
        assert h.probe.count_subscribers(CAMERA) == 0
        for life in (depth, odom):
            assert life.transition(Transition.TRANSITION_CONFIGURE)
            assert life.transition(Transition.TRANSITION_ACTIVATE) and life.state() == "active"
        assert h.wait_connected(subscribers=2)
    finally:
        h.close()
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "/depth_node, /odometry_node wait unconfigured" in out and "ros2 lifecycle set" in out


def test_vode_run_refuses_a_bag_into_nodes_that_do_not_start(tmp_path, capsys):
    """`vode run --no-autostart --bag B` (a bag into nodes that wait unconfigured) | one line naming the
    clash and the way out, exit 2, nothing started
    """
    from vode_ros.cli.main import main

    assert main(["run", "--no-autostart", "--bag", str(tmp_path / "bag")]) == 2
    assert "--no-autostart" in capsys.readouterr().err


def test_a_destroyed_node_leaves_no_lifecycle_services_behind(models_dir):
    """rclpy's LifecycleNode keeps its state machine (and the node handle) alive past destroy_node:
    the node's lifecycle services and ~/transition_event stayed on the graph as ghosts."""
    ensure_rclpy()
    from rclpy.node import Node

    from vode_ros.nodes.depth_node import DepthNode

    probe = Node("ghost_probe")
    try:
        node = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir))])
        node.destroy_node()

        def ghosts():
            return ([n for n, _ in probe.get_service_names_and_types() if n.startswith("/depth_node/")
                     and "type_description" not in n]
                    + [n for n, _ in probe.get_topic_names_and_types() if n == "/depth_node/transition_event"])

        h = Harness()
        try:
            assert h.wait_for(lambda: not ghosts(), 5.0), ghosts()
        finally:
            h.close()
    finally:
        probe.destroy_node()


@pytest.mark.parametrize("configured", [False, True], ids=["from_unconfigured", "from_active"])
def test_shutdown_finalizes_the_node_from_any_state(models_dir, configured):
    ensure_rclpy()
    node = _depth_node(models_dir)
    try:
        if configured:
            node.trigger_configure()
            node.trigger_activate()
        assert node.trigger_shutdown() == TransitionCallbackReturn.SUCCESS
        assert node.lifecycle_state == "finalized" and node.model is None
        assert node.count_subscribers(CAMERA) == 0
        # what configure did not create stays: the lifecycle and parameter services
        assert {"depth_node/get_state", "depth_node/set_parameters"} <= {srv.srv_name.lstrip("/") for srv in node.services}
    finally:
        node.destroy_node()
        node.destroy_node()           # twice, as a failed start and rclpy's shutdown may do: no error
