"""Run time without ROS: ONNX Runtime inference, pose estimation and integration, scale, sync.
Nodes (vode_ros.nodes) are thin rclpy shells over these modules; no torch here."""
