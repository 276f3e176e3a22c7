"""Launch the vode_ros depth and odometry nodes.

    ros2 launch vode_ros vode.launch.py
    ros2 launch vode_ros vode.launch.py image_topic:=/my_cam/image_raw camera_info_topic:=/my_cam/camera_info
    ros2 launch vode_ros vode.launch.py bag:=/path/to/kitti_bag use_sim_time:=true

Two cameras side by side: one instance per camera, each in its own namespace (outputs such
as depth/image, odom and vode/status are relative names) and with its own TF frames
(frame_prefix, or odom_frame / base_frame / camera_frame one by one):

    ros2 launch vode_ros vode.launch.py namespace:=front frame_prefix:=front/ \\
        image_topic:=/front/image_raw camera_info_topic:=/front/camera_info
    ros2 launch vode_ros vode.launch.py namespace:=rear frame_prefix:=rear/ \\
        image_topic:=/rear/image_raw camera_info_topic:=/rear/camera_info

The nodes are managed (lifecycle) nodes that configure and activate themselves; with
autostart:=false they wait unconfigured for a lifecycle manager or for
`ros2 lifecycle set /depth_node configure` (then activate; deactivate stops taking images).

bag:= plays a rosbag2 with --clock: through `ros2 bag play` where the ros2 CLI has the bag
verb, else through `vode bag play` (the package's own player, which also waits until every
node started has subscribed to the images before the first message).

After scripts/setup.sh the package is in the ament index of its venv (.venv/ros_ws/install/
vode_ros), so `ros2 launch vode_ros vode.launch.py` works there wherever the `launch` packages
are installed. Without `ros2 launch` (ROS 2 from PyPI wheels alone), `vode run` starts the same
nodes from the same config/vode.yaml, and `python -m vode_ros.tools.launch_runner` runs this
file wherever the `launch` packages are importable.
"""
import importlib.util
import os
import shutil
import sys

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

try:  # Jazzy and later (Kilted): comparisons are substitutions
    from launch.substitutions import NotEqualsSubstitution

    def _if_not_empty(name):
        return IfCondition(NotEqualsSubstitution(LaunchConfiguration(name), ""))
except ImportError:  # Humble, Iron: only the condition, deprecated since Jazzy
    from launch.conditions import LaunchConfigurationNotEquals

    def _if_not_empty(name):
        return LaunchConfigurationNotEquals(name, "")


def _share_dir():
    """share/vode_ros of an install, or the source tree when the package is not installed."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return get_package_share_directory("vode_ros")
    except Exception:  # not in the ament index: running from a source checkout or a pip install
        return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bag_player():
    """`ros2 bag play` where the ros2 CLI has the bag verb, else this package's player."""
    bag = LaunchConfiguration("bag")
    if shutil.which("ros2") and importlib.util.find_spec("ros2bag") is not None:
        return ["ros2", "bag", "play", bag, "--clock", "--rate", LaunchConfiguration("bag_rate")]
    # Wait for the image subscription of every node started: the models take seconds to load,
    # and frames sent before the slower node subscribes would be lost to it.
    # --reliable: lossless into nodes started with reliable_input:=true, harmless for best-effort readers.
    readers = PythonExpression(["str(max(1, ('", LaunchConfiguration("depth"), "' == 'true') + ('",
                                LaunchConfiguration("odometry"), "' == 'true')))"])
    return [sys.executable, "-m", "vode_ros.cli.main", "bag", "play", bag, "--clock", "--reliable",
            "--rate", LaunchConfiguration("bag_rate"), "--wait-for", LaunchConfiguration("image_topic"),
            "--wait-subscribers", readers, "--wait-timeout", "120"]


def generate_launch_description():
    share = _share_dir()
    prefix = LaunchConfiguration("frame_prefix")
    args = [
        DeclareLaunchArgument("mode", default_value="mono", choices=["mono", "stereo"],
                              description="mono, or stereo (right camera pairs for metric scale)"),
        DeclareLaunchArgument("scale_mode", default_value="auto",
                              choices=["auto", "model", "none", "stereo", "stereo_start", "camera_height"],
                              description="where the depth node's metric scale comes from (auto: the model "
                                          "where it knows this camera and domain, else stereo, else none)"),
        DeclareLaunchArgument("domain", default_value="",
                              description="what the camera sees (driving, indoor, ...; '' = not said)"),
        DeclareLaunchArgument("pose_source", default_value="hybrid", choices=["net", "geometric", "hybrid"],
                              description="the odometry node's pose: pose net, geometry on depth, or both"),
        DeclareLaunchArgument("geometry_depth", default_value="auto", choices=["auto", "depth_topic", "stereo"],
                              description="depth for the geometric pose: SGBM (mode stereo), the depth node's, "
                                          "or auto"),
        DeclareLaunchArgument("right_image_topic", default_value="/camera/right/image_raw"),
        DeclareLaunchArgument("right_camera_info_topic", default_value="/camera/right/camera_info"),
        DeclareLaunchArgument("image_transport", default_value="raw", choices=["raw", "compressed"]),
        DeclareLaunchArgument("reliable_input", default_value="false", choices=["true", "false"],
                              description="RELIABLE + KEEP_ALL input, every frame processed (bag replay); "
                                          "false: sensor-data QoS, newest frame wins (live cameras)"),
        DeclareLaunchArgument("autostart", default_value="true", choices=["true", "false"],
                              description="configure and activate the (lifecycle) nodes at start-up; false: "
                                          "leave the transitions to a lifecycle manager"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/vode.rviz"),
        DeclareLaunchArgument("model", default_value="", choices=["", "driving", "indoor"],
                              description="shipped model where model_dir is '': driving (KITTI cameras) | indoor "
                                          "(hand-held, RGB-D, drones) | '' = by the domain argument"),
        DeclareLaunchArgument("model_dir", default_value="", description="folder with depth.onnx + pose.onnx ('' = shipped)"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "vode.yaml")),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of both nodes (one per camera when several run)"),
        DeclareLaunchArgument("frame_prefix", default_value="",
                              description="prefix of the default TF frame names, e.g. 'front/'"),
        DeclareLaunchArgument("odom_frame", default_value=[prefix, "odom"]),
        DeclareLaunchArgument("base_frame", default_value=[prefix, "base_link"]),
        DeclareLaunchArgument("camera_frame", default_value=[prefix, "camera_left_optical_frame"],
                              description="optical frame of the images (their header.frame_id)"),
        DeclareLaunchArgument("image_topic", default_value="/camera/left/image_raw"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/left/camera_info"),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        DeclareLaunchArgument("depth", default_value="true", description="start the depth node"),
        DeclareLaunchArgument("odometry", default_value="true", description="start the odometry node"),
        DeclareLaunchArgument("bag", default_value="", description="rosbag2 to play (with --clock)"),
        DeclareLaunchArgument("bag_rate", default_value="1.0", description="playback rate of bag"),
    ]
    overrides = {
        "model_dir": LaunchConfiguration("model_dir"),
        "model": LaunchConfiguration("model"),
        "image_topic": LaunchConfiguration("image_topic"),
        "camera_info_topic": LaunchConfiguration("camera_info_topic"),
        "mode": LaunchConfiguration("mode"),
        "right_image_topic": LaunchConfiguration("right_image_topic"),
        "right_camera_info_topic": LaunchConfiguration("right_camera_info_topic"),
        "image_transport": LaunchConfiguration("image_transport"),
        "reliable_input": PythonExpression(["'", LaunchConfiguration("reliable_input"), "' == 'true'"]),
        "use_sim_time": PythonExpression(["'", LaunchConfiguration("use_sim_time"), "' == 'true'"]),
        "autostart": PythonExpression(["'", LaunchConfiguration("autostart"), "' == 'true'"]),
    }
    params = [LaunchConfiguration("params_file"), overrides]
    depth_params = params + [{"scale_mode": LaunchConfiguration("scale_mode"), "domain": LaunchConfiguration("domain")}]
    # The odometry node follows the depth node's scale unless the model itself is metric.
    odom_scale = PythonExpression(["'model' if '", LaunchConfiguration("scale_mode"),
                                   "' in ('model', 'none') else 'from_depth'"])
    odom_params = params + [{
        "scale_mode": odom_scale,
        "pose_source": LaunchConfiguration("pose_source"),
        "geometry_depth": LaunchConfiguration("geometry_depth"),
        "odom_frame": LaunchConfiguration("odom_frame"),
        "base_frame": LaunchConfiguration("base_frame"),
        "camera_frame": LaunchConfiguration("camera_frame"),
        "domain": LaunchConfiguration("domain"),   # the pose net's domain gate, and the model choice
    }]
    namespace = LaunchConfiguration("namespace")
    nodes = [
        Node(package="vode_ros", executable="depth_node", name="depth_node", namespace=namespace,
             parameters=depth_params, output="screen", condition=IfCondition(LaunchConfiguration("depth"))),
        Node(package="vode_ros", executable="odometry_node", name="odometry_node", namespace=namespace,
             parameters=odom_params, output="screen", condition=IfCondition(LaunchConfiguration("odometry"))),
        Node(package="rviz2", executable="rviz2", arguments=["-d", os.path.join(share, "config", "vode.rviz")],
             condition=IfCondition(LaunchConfiguration("rviz"))),
        ExecuteProcess(cmd=_bag_player(), output="screen", condition=_if_not_empty("bag")),
    ]
    return LaunchDescription(args + nodes)
