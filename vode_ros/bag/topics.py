"""Topic and frame contract shared by the KITTI converter, the nodes and the demo.

Images are in the camera's optical frame (REP-103: x right, y down, z forward). The
odometry chain follows REP-105: ODOM_FRAME -> BASE_FRAME, with the camera mounted on
base_link by DEFAULT_MOUNT_XYZ / DEFAULT_MOUNT_RPY (see vode_ros.frames.mount_transform).
"""
from __future__ import annotations

# Topics written by `vode bag from-kitti` (and read by the nodes).
LEFT_IMAGE = "/camera/left/image_raw"
LEFT_INFO = "/camera/left/camera_info"
RIGHT_IMAGE = "/camera/right/image_raw"
RIGHT_INFO = "/camera/right/camera_info"
DEPTH_IMAGE = "/camera/depth/image"     # a depth sensor registered to the left camera (32FC1, m)
TF_STATIC = "/tf_static"
GROUND_TRUTH = "/ground_truth/odom"

# Frames.
LEFT_FRAME = "camera_left_optical_frame"
RIGHT_FRAME = "camera_right_optical_frame"
ODOM_FRAME = "odom"
BASE_FRAME = "base_link"

# KITTI camera mount: camera 1.65 m above base_link (on the ground), looking forward.
DEFAULT_MOUNT_XYZ = (0.0, 0.0, 1.65)
DEFAULT_MOUNT_RPY = (0.0, 0.0, 0.0)

# Message types (ROS 2 names as used by rosbags).
IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TF_TYPE = "tf2_msgs/msg/TFMessage"
ODOMETRY_TYPE = "nav_msgs/msg/Odometry"
