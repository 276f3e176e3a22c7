"""vode_ros: self-supervised depth and visual odometry for ROS 2 (run time side).

The run time needs numpy, onnxruntime and rclpy only; torch lives in vode_training.
"""
__version__ = "0.1.0"
