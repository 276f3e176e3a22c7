"""What the depth and odometry nodes share: parameters, models, camera input, health.

A node here is a thin adapter: it decodes messages, hands numpy to vode_ros.inference /
vode_ros.odometry and turns results back into messages. Bad input is logged (throttled),
counted, reported on /diagnostics, and never stops the node.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from vode_ros.image_codec import ImageDecodeError
from vode_ros.inference import OnnxModel, default_model_dir
from vode_ros.latest_worker import LatestFrameWorker
from vode_ros.nodes.ros_msgs import image_from_msg, k_from_camera_info, stamp_to_sec
from vode_ros_msgs.msg import VodeStatus

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class Frame:
    """One camera frame on its way from the callback to the worker."""

    __slots__ = ("header", "image", "encoding", "k", "received")

    def __init__(self, header, image: np.ndarray, encoding: str, k: np.ndarray):
        self.header, self.image, self.encoding, self.k = header, image, encoding, k
        self.received = time.perf_counter()


class VodeNodeBase(Node):
    role = "depth"   # which model file and kind: depth | pose

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self._declare("model_dir", "", "folder with depth.onnx and pose.onnx ('' = the shipped models)")
        self._declare("providers", ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                      "ONNX Runtime execution providers in order of preference")
        self._declare("threads", 0, "ONNX Runtime intra-op threads (0 = ORT default)")
        self._declare("image_topic", "/camera/left/image_raw", "input sensor_msgs/Image")
        self._declare("camera_info_topic", "/camera/left/camera_info", "input sensor_msgs/CameraInfo")
        model_dir = Path(self.get_parameter("model_dir").value or default_model_dir())
        self.model = OnnxModel(model_dir / f"{self.role}.onnx", list(self.get_parameter("providers").value),
                               int(self.get_parameter("threads").value), expected_kind=self.role)
        model = self.model
        self.get_logger().info(
            f"{model.path} ({model.meta.method}, {model.meta.width}x{model.meta.height} {model.meta.color}) "
            f"runs on {model.provider}"
        )
        self.camera_info: CameraInfo | None = None
        self._parked: Image | None = None
        self.frames_in = self.frames_out = self.frames_rejected = 0
        self.last_problem = ""
        self.last_problem_time = 0.0
        self.last_total_ms = 0.0
        self.status_pub = self.create_publisher(VodeStatus, "vode/status", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(CameraInfo, self.get_parameter("camera_info_topic").value,
                                 self._on_camera_info, qos_profile_sensor_data)
        self.create_subscription(Image, self.get_parameter("image_topic").value, self._on_image,
                                 qos_profile_sensor_data)
        self.worker = LatestFrameWorker(self._process_safely, name=f"{name}-inference")
        self.create_timer(1.0, self._publish_diagnostics)

    # -- parameters ---------------------------------------------------------------------
    def _declare(self, name: str, default, description: str, **descriptor):
        return self.declare_parameter(name, default, ParameterDescriptor(description=description, **descriptor))

    # -- input ----------------------------------------------------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        if msg.k[0] <= 0 or msg.width == 0:
            self.problem(f"CameraInfo on {self.get_parameter('camera_info_topic').value} has no intrinsics "
                         "(K[0] <= 0 or width 0): calibrate the camera")
            return
        self.camera_info = msg
        parked, self._parked = self._parked, None
        if parked is not None:
            self._on_image(parked, counted=True)

    def _on_image(self, msg: Image, counted: bool = False) -> None:
        if not counted:
            self.frames_in += 1
        if self.camera_info is None:
            # A camera publishes image and CameraInfo together, in either order: keep the
            # newest image until the first CameraInfo arrives instead of losing it.
            if self._parked is not None:
                self.reject(f"no CameraInfo yet on {self.get_parameter('camera_info_topic').value}; "
                            "waiting for it before processing images")
            self._parked = msg
            return
        try:
            img, enc = image_from_msg(msg)
        except ImageDecodeError as exc:
            return self.reject(f"image on {self.get_parameter('image_topic').value} rejected: {exc}")
        info = self.camera_info
        if (img.shape[1], img.shape[0]) != (info.width, info.height):
            return self.reject(
                f"image is {img.shape[1]}x{img.shape[0]} but CameraInfo says {info.width}x{info.height}: "
                "publish the CameraInfo that belongs to this image stream"
            )
        self.worker.submit(Frame(msg.header, img, enc, k_from_camera_info(info)))

    # -- health ---------------------------------------------------------------------------
    def reject(self, why: str) -> None:
        self.frames_rejected += 1
        self.problem(why)

    def problem(self, why: str) -> None:
        self.last_problem, self.last_problem_time = why, time.monotonic()
        self.get_logger().warning(why, throttle_duration_sec=5.0)

    def _process_safely(self, frame: Frame) -> None:
        try:
            self.process(frame)
            self.frames_out += 1
            self.last_total_ms = (time.perf_counter() - frame.received) * 1e3
            self._publish_status(frame.header)
        except Exception as exc:  # a bad frame must not kill the worker thread
            self.reject(f"processing failed: {exc.__class__.__name__}: {exc}")

    def process(self, frame: Frame) -> None:
        raise NotImplementedError

    def scale_source(self) -> str:
        return "model (stereo-trained, metric)" if self.model.meta.metric_scale else "none (relative)"

    def _publish_status(self, header) -> None:
        model = self.model
        self.status_pub.publish(VodeStatus(
            header=header, node=self.role, model=str(model.path), method=model.meta.method,
            provider=model.provider, scale_source=self.scale_source(), frames_in=self.frames_in,
            frames_out=self.frames_out, frames_dropped=self.worker.dropped,
            frames_rejected=self.frames_rejected, inference_ms=float(model.last_ms),
            total_ms=float(self.last_total_ms)))

    def _publish_diagnostics(self) -> None:
        recent = time.monotonic() - self.last_problem_time < 10.0 and self.last_problem
        level = WARN if recent else OK
        message = self.last_problem if recent else "running"
        if self.camera_info is None and self.frames_in == 0:
            level, message = WARN, "waiting for images and CameraInfo"
        status = DiagnosticStatus(level=level, name=f"vode_ros: {self.get_name()}", message=message,
                                  hardware_id=self.get_parameter("image_topic").value)
        model = self.model
        status.values = [KeyValue(key=k, value=str(v)) for k, v in (
            ("model", model.path), ("provider", model.provider), ("frames_in", self.frames_in),
            ("frames_out", self.frames_out), ("frames_dropped", self.worker.dropped),
            ("frames_rejected", self.frames_rejected), ("inference_ms", f"{model.last_ms:.1f}"))]
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        self.worker.stop()
        super().destroy_node()


def run_single(node_cls, args=None) -> int:
    """Entry point of one node in its own process; start-up errors exit with status 1."""
    from vode_ros.inference import ModelLoadError

    rclpy.init(args=args)
    try:
        node = node_cls()
    except ModelLoadError as exc:
        rclpy.logging.get_logger(node_cls.__name__).fatal(str(exc))
        rclpy.try_shutdown()
        return 1
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
