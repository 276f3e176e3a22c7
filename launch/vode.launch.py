"""Launch the vode_ros depth and odometry nodes.

    ros2 launch vode_ros vode.launch.py
    ros2 launch vode_ros vode.launch.py image_topic:=/my_cam/image_raw camera_info_topic:=/my_cam/camera_info
    ros2 launch vode_ros vode.launch.py bag:=/path/to/kitti_bag use_sim_time:=true

On a machine without `ros2 launch` (ROS 2 from PyPI wheels), `vode run` starts the same
nodes from the same config/vode.yaml.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition, LaunchConfigurationNotEquals
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("vode_ros")
    args = [
        DeclareLaunchArgument("mode", default_value="mono", choices=["mono", "stereo"],
                              description="mono, or stereo (right camera pairs for metric scale)"),
        DeclareLaunchArgument("scale_mode", default_value="model",
                              choices=["model", "none", "stereo", "stereo_start", "camera_height"],
                              description="where the depth node's metric scale comes from"),
        DeclareLaunchArgument("right_image_topic", default_value="/camera/right/image_raw"),
        DeclareLaunchArgument("right_camera_info_topic", default_value="/camera/right/camera_info"),
        DeclareLaunchArgument("image_transport", default_value="raw", choices=["raw", "compressed"]),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/vode.rviz"),
        DeclareLaunchArgument("model_dir", default_value="", description="folder with depth.onnx + pose.onnx ('' = shipped)"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "vode.yaml")),
        DeclareLaunchArgument("namespace", default_value=""),
        DeclareLaunchArgument("image_topic", default_value="/camera/left/image_raw"),
        DeclareLaunchArgument("camera_info_topic", default_value="/camera/left/camera_info"),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
        DeclareLaunchArgument("depth", default_value="true", description="start the depth node"),
        DeclareLaunchArgument("odometry", default_value="true", description="start the odometry node"),
        DeclareLaunchArgument("bag", default_value="", description="rosbag2 to play (with --clock)"),
    ]
    overrides = {
        "model_dir": LaunchConfiguration("model_dir"),
        "image_topic": LaunchConfiguration("image_topic"),
        "camera_info_topic": LaunchConfiguration("camera_info_topic"),
        "mode": LaunchConfiguration("mode"),
        "right_image_topic": LaunchConfiguration("right_image_topic"),
        "right_camera_info_topic": LaunchConfiguration("right_camera_info_topic"),
        "image_transport": LaunchConfiguration("image_transport"),
        "use_sim_time": PythonExpression(["'", LaunchConfiguration("use_sim_time"), "' == 'true'"]),
    }
    params = [LaunchConfiguration("params_file"), overrides]
    depth_params = params + [{"scale_mode": LaunchConfiguration("scale_mode")}]
    # The odometry node follows the depth node's scale unless the model itself is metric.
    odom_scale = PythonExpression(["'model' if '", LaunchConfiguration("scale_mode"),
                                   "' in ('model', 'none') else 'from_depth'"])
    nodes = [
        Node(package="vode_ros", executable="depth_node", name="depth_node", namespace=LaunchConfiguration("namespace"),
             parameters=depth_params, output="screen", condition=IfCondition(LaunchConfiguration("depth"))),
        Node(package="vode_ros", executable="odometry_node", name="odometry_node",
             namespace=LaunchConfiguration("namespace"), parameters=params + [{"scale_mode": odom_scale}],
             output="screen",
             condition=IfCondition(LaunchConfiguration("odometry"))),
        Node(package="rviz2", executable="rviz2", arguments=["-d", os.path.join(share, "config", "vode.rviz")],
             condition=IfCondition(LaunchConfiguration("rviz"))),
        ExecuteProcess(cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--clock"], output="screen",
                       condition=LaunchConfigurationNotEquals("bag", "")),
    ]
    return LaunchDescription(args + nodes)
