"""What the depth and odometry nodes share: parameters, model, camera input, health.

A node here is a thin adapter: it decodes messages, hands numpy to vode_ros.runtime.inference /
vode_ros.runtime.odometry / vode_ros.runtime.scale and turns results back into messages. Bad input is
logged (throttled), counted, reported on /diagnostics, and never stops the node.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger

from vode_ros.core.image_codec import ImageDecodeError
from vode_ros.runtime.inference import ModelLoadError, OnnxModel, default_model_dir
from vode_ros.runtime.latest_worker import LatestFrameWorker
from vode_ros.nodes.ros_msgs import image_from_msg, k_from_camera_info, stamp_to_sec
from vode_ros.runtime.stereo_sync import StereoPairer
from vode_ros_msgs.msg import VodeStatus

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class Frame:
    """One camera frame (a left/right pair in stereo) on its way from the callbacks to the worker."""

    __slots__ = ("header", "image", "encoding", "k", "right", "baseline", "received")

    def __init__(self, header, image: np.ndarray, encoding: str, k: np.ndarray):
        self.header, self.image, self.encoding, self.k = header, image, encoding, k
        self.right: np.ndarray | None = None
        self.baseline: float | None = None
        self.received = time.perf_counter()


def baseline_from_camera_info(info: CameraInfo) -> float | None:
    """Stereo baseline (m) from the right camera's P: P[0,3] = -fx' * baseline (ROS convention)."""
    fx, tx = info.p[0], info.p[3]
    return float(-tx / fx) if fx > 0 and tx < 0 else None


class VodeNodeBase(Node):
    role = "depth"   # which model file and kind: depth | pose

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self._declare("model_dir", "", "folder with depth.onnx and pose.onnx ('' = the shipped models)")
        self._declare("providers", ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                      "ONNX Runtime execution providers in order of preference")
        self._declare("threads", 0, "ONNX Runtime intra-op threads (0 = ORT default)",
                      integer_range=[IntegerRange(from_value=0, to_value=64, step=1)])
        self._declare("mode", "mono", "mono | stereo (stereo pairs the right image, for metric scale)")
        self._declare("image_topic", "/camera/left/image_raw", "input camera image (left in stereo)")
        self._declare("camera_info_topic", "/camera/left/camera_info", "CameraInfo of image_topic")
        self._declare("right_image_topic", "/camera/right/image_raw", "right image (mode stereo)")
        self._declare("right_camera_info_topic", "/camera/right/camera_info", "right CameraInfo (mode stereo)")
        self._declare("image_transport", "raw", "raw (sensor_msgs/Image) | compressed (<topic>/compressed, jpeg/png)")
        self._declare("stereo_slop", 0.02, "max stamp difference of a stereo pair, s",
                      floating_point_range=[FloatingPointRange(from_value=0.0, to_value=1.0, step=0.0)])
        p = self.get_parameter
        self.mode = p("mode").value
        if self.mode not in ("mono", "stereo"):
            raise ValueError(f"parameter mode='{self.mode}': use mono or stereo")
        self.model_lock = threading.Lock()
        self.model = self.load_model()
        self.camera_info: CameraInfo | None = None
        self.right_info: CameraInfo | None = None
        self._parked: Image | None = None
        self.frames_in = self.frames_out = self.frames_rejected = 0
        self.last_problem, self.last_problem_time, self.last_total_ms = "", 0.0, 0.0
        self.pairer = StereoPairer(slop=float(p("stereo_slop").value))
        self.status_pub = self.create_publisher(VodeStatus, "vode/status", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(CameraInfo, p("camera_info_topic").value, self._on_camera_info,
                                 qos_profile_sensor_data)
        self._subscribe_image(p("image_topic").value, self._on_image)
        if self.mode == "stereo":
            self.create_subscription(CameraInfo, p("right_camera_info_topic").value,
                                     lambda m: setattr(self, "right_info", m), qos_profile_sensor_data)
            self._subscribe_image(p("right_image_topic").value, self._on_right_image)
        self.create_service(Trigger, "~/reload_model", self._on_reload)
        self.worker = LatestFrameWorker(self._process_safely, name=f"{name}-inference")
        self.create_timer(1.0, self._publish_diagnostics)

    # -- parameters and model -------------------------------------------------------------
    def _declare(self, name: str, default, description: str, **descriptor):
        return self.declare_parameter(name, default, ParameterDescriptor(description=description, **descriptor))

    def load_model(self) -> OnnxModel:
        p = self.get_parameter
        model_dir = Path(p("model_dir").value or default_model_dir())
        model = OnnxModel(model_dir / f"{self.role}.onnx", list(p("providers").value), int(p("threads").value),
                          expected_kind=self.role)
        self.get_logger().info(f"{model.path} ({model.meta.method}, {model.meta.width}x{model.meta.height} "
                               f"{model.meta.color}) runs on {model.provider}")
        return model

    def _on_reload(self, request, response):
        """Load the model again from model_dir (set it first with `ros2 param set`) and swap it in."""
        try:
            new = self.load_model()
        except ModelLoadError as exc:
            response.success, response.message = False, str(exc)
            self.problem(f"reload failed, keeping {self.model.path}: {exc}")
            return response
        with self.model_lock:
            self.model = new
            self.on_model_swapped()
        response.success, response.message = True, f"loaded {new.path} on {new.provider}"
        return response

    def on_model_swapped(self) -> None:
        """Subclasses rebuild what depends on the model (called under model_lock)."""

    # -- input ------------------------------------------------------------------------------
    def _subscribe_image(self, topic: str, callback) -> None:
        if self.get_parameter("image_transport").value == "compressed":
            self.create_subscription(CompressedImage, topic.rstrip("/") + "/compressed", callback,
                                     qos_profile_sensor_data)
        else:
            self.create_subscription(Image, topic, callback, qos_profile_sensor_data)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        if msg.k[0] <= 0 or msg.width == 0:
            self.problem(f"CameraInfo on {self.get_parameter('camera_info_topic').value} has no intrinsics "
                         "(K[0] <= 0 or width 0): calibrate the camera")
            return
        self.camera_info = msg
        parked, self._parked = self._parked, None
        if parked is not None:
            self._on_image(parked, counted=True)

    def _decode(self, msg, topic_param: str) -> tuple[np.ndarray, str] | None:
        try:
            return image_from_msg(msg)
        except ImageDecodeError as exc:
            self.reject(f"image on {self.get_parameter(topic_param).value} rejected: {exc}")
            return None

    def _on_image(self, msg, counted: bool = False) -> None:
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
        decoded = self._decode(msg, "image_topic")
        if decoded is None:
            return
        img, enc = decoded
        info = self.camera_info
        if (img.shape[1], img.shape[0]) != (info.width, info.height):
            return self.reject(
                f"image is {img.shape[1]}x{img.shape[0]} but CameraInfo says {info.width}x{info.height}: "
                "publish the CameraInfo that belongs to this image stream")
        frame = Frame(msg.header, img, enc, k_from_camera_info(info))
        if self.mode == "stereo":
            self._pair(self.pairer.add_left(stamp_to_sec(msg.header.stamp), frame))
        else:
            self.worker.submit(frame)

    def _on_right_image(self, msg) -> None:
        decoded = self._decode(msg, "right_image_topic")
        if decoded is not None:
            self._pair(self.pairer.add_right(stamp_to_sec(msg.header.stamp), decoded))

    def _pair(self, pair) -> None:
        if pair is None:
            if self.pairer.unpaired and self.pairer.unpaired % 10 == 1:
                self.problem(f"stereo pair out of sync: {self.pairer.unpaired} images without a partner within "
                             f"{self.pairer.slop} s (check stereo_slop and that both cameras are triggered together)")
            return
        frame, (right, right_enc) = pair
        if right.shape[:2] != frame.image.shape[:2]:
            return self.reject(f"right image is {right.shape[1]}x{right.shape[0]}, left is "
                               f"{frame.image.shape[1]}x{frame.image.shape[0]}: stereo images must be rectified pairs")
        baseline = baseline_from_camera_info(self.right_info) if self.right_info else None
        if baseline is None:
            return self.reject(f"no usable right CameraInfo on {self.get_parameter('right_camera_info_topic').value} "
                               "(need P[0,3] = -fx * baseline < 0)")
        from vode_ros.core.image_codec import to_gray

        frame.right, frame.baseline = to_gray(right, right_enc), baseline
        self.worker.submit(frame)

    # -- health -------------------------------------------------------------------------------
    def reject(self, why: str) -> None:
        self.frames_rejected += 1
        self.problem(why)

    def problem(self, why: str) -> None:
        self.last_problem, self.last_problem_time = why, time.monotonic()
        self.get_logger().warning(why, throttle_duration_sec=5.0)

    def _process_safely(self, frame: Frame) -> None:
        try:
            with self.model_lock:
                self.process(frame)
            self.frames_out += 1
            self.last_total_ms = (time.perf_counter() - frame.received) * 1e3
            self._publish_status(frame.header)
        except Exception as exc:  # a bad frame must not kill the worker thread
            self.reject(f"processing failed: {exc.__class__.__name__}: {exc}")

    def process(self, frame: Frame) -> None:
        raise NotImplementedError

    def scale_info(self) -> tuple[str, float]:
        """(where the scale comes from, the factor applied)."""
        return ("model (stereo-trained, metric)" if self.model.meta.metric_scale else "none (relative)"), 1.0

    def _publish_status(self, header) -> None:
        model = self.model
        source, scale = self.scale_info()
        self.status_pub.publish(VodeStatus(
            header=header, node=self.role, model=str(model.path), method=model.meta.method,
            provider=model.provider, scale_source=source, scale=float(scale), frames_in=self.frames_in,
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
        source, scale = self.scale_info()
        status.values = [KeyValue(key=k, value=str(v)) for k, v in (
            ("model", model.path), ("provider", model.provider), ("mode", self.mode), ("scale_source", source),
            ("scale", f"{scale:.4f}"), ("frames_in", self.frames_in), ("frames_out", self.frames_out),
            ("frames_dropped", self.worker.dropped), ("frames_rejected", self.frames_rejected),
            ("stereo_unpaired", self.pairer.unpaired), ("inference_ms", f"{model.last_ms:.1f}"))]
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        self.worker.stop()
        super().destroy_node()


def run_single(node_cls, args=None) -> int:
    """Entry point of one node in its own process; start-up errors exit with status 1."""
    rclpy.init(args=args)
    try:
        node = node_cls()
    except (ModelLoadError, ValueError) as exc:
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
