"""Depth node: camera image + CameraInfo -> depth image (32FC1, metres, REP-118).

Publishes, with the input image's header (same stamp and optical frame):
  depth/image        sensor_msgs/Image 32FC1, metres, at the network's resolution
  depth/camera_info  the pinhole camera of that image: the rectified input camera (P) rescaled to
                     that resolution (as image_proc resize), no distortion
  depth/color        bgr8 colourised inverse depth, for viewers
  depth/points       sensor_msgs/PointCloud2 (xyz, decimated), when publish_points is true
  vode/status        vode_ros_msgs/VodeStatus per frame (with the scale in use); /diagnostics 1 Hz
Service ~/reload_model (std_srvs/Trigger) swaps in the model found in model_dir.

Online adaptation (parameter adapt, off by default; vode_ros.tools.adaptation): the frames also feed
a replay buffer; a background thread fine-tunes the model's training method on them and swaps
improved weights in (held-out guard with rollback). Service ~/save_adapted (std_srvs/Trigger)
writes the accepted weights to adapt_save_dir (restart with model_dir:=<adapt_save_dir>). After
each accepted swap, <adapt_save_dir>/live/ holds depth.onnx + pose.onnx and the odometry node
(adapt_odometry_node) gets model_dir:=<adapt_save_dir>/live and ~/reload_model. Adaptation
counters go to /diagnostics as a second status, "vode_ros: depth_node adaptation".
"""
from __future__ import annotations


import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from vode_ros.nodes.adaptation_hook import AdaptationHook
from vode_ros.nodes.base import VodeNodeBase
from vode_ros.nodes.camera_input import Frame
from vode_ros.nodes.shutdown import run_single
from vode_ros.runtime.inference import DepthEstimator
from vode_ros.nodes.ros_msgs import image_to_msg, pointcloud_msg, rectified_camera_info, stamp_to_ns, stamp_to_sec
from vode_ros.runtime.metric_trust import ScaleDecision, choose_scale_source, horizontal_fov_deg
from vode_ros.runtime.scale import NODE_MODES, ScaleEstimator, median_ratio, relative_because, stereo_depth


class DepthNode(VodeNodeBase):
    role = "depth"

    def __init__(self, depth_cache=None, **kwargs):
        # depth_cache (runtime.pose.depth_input.DepthCache): an odometry node in the same process
        # takes the depth from here instead of from depth/image (vode run).
        self.depth_sink = depth_cache
        self.adaptation: AdaptationHook | None = None     # made at configure
        super().__init__("depth_node", **kwargs)

    def declare(self) -> None:
        self._declare("scale_mode", "auto", "auto | model | none | stereo | stereo_start | camera_height; "
                      "auto: the model's metres where it was trained on a camera and domain like this one, "
                      "else stereo in mode stereo, else none (relative, said so on vode/status)",
                      choices=NODE_MODES)
        self._declare("domain", "", "what the camera sees, e.g. driving or indoor ('' = not said): with "
                      "scale_mode auto a model trained on another domain is not trusted for metres")
        self._declare("camera_height", 1.65, "camera height over the ground, m (scale_mode camera_height)",
                      low=0.05, high=10.0)
        self._declare("scale_smoothing", 0.9, "weight of the previous scale estimate (EMA)", low=0.0, high=1.0)
        self._declare("publish_color", True, "publish depth/color (bgr8)")
        self._declare("color_max_depth", 40.0, "depth shown darkest in depth/color, m", low=0.6, high=10000.0)
        self._declare("publish_points", False, "publish depth/points (PointCloud2)")
        self._declare("points_stride", 4, "keep every n-th pixel in rows and columns for depth/points",
                      low=1, high=64)
        AdaptationHook.declare(self)

    def build(self) -> None:
        p = self.params.value
        self.requested_scale_mode = p("scale_mode")
        self.scale_decision: ScaleDecision | None = None
        self._decision_key: tuple | None = None
        self.scaler = ScaleEstimator("none" if self.requested_scale_mode == "auto" else self.requested_scale_mode,
                                     camera_height=float(p("camera_height")), smoothing=float(p("scale_smoothing")))
        self.params.on_change(["scale_mode", "domain"], self._set_scale_mode)
        self.params.on_change(["camera_height"], lambda v: setattr(self.scaler, "camera_height",
                                                                    float(v["camera_height"])))
        self.params.on_change(["scale_smoothing"], lambda v: setattr(self.scaler, "smoothing",
                                                                      float(v["scale_smoothing"])))
        self.estimator = DepthEstimator(self.model)
        self._last_stamp: float | None = None
        # Reliable depth 5: consumers (recorders, mapping) should not lose depth frames.
        qos = self.output_qos(5)
        self.depth_pub = self.create_publisher(Image, "depth/image", qos)
        self.info_pub = self.create_publisher(CameraInfo, "depth/camera_info", qos)
        self.color_pub = self.create_publisher(Image, "depth/color", qos)
        self.points_pub = self.create_publisher(PointCloud2, "depth/points", qos)
        self.adaptation = AdaptationHook(self)      # adapt_* parameters, ~/save_adapted; off unless adapt:=true

    def check_parameters(self, values) -> str | None:
        if values.get("scale_mode") in ("stereo", "stereo_start") and values.get("mode") != "stereo":
            return (f"scale_mode '{values['scale_mode']}' needs mode:=stereo (the right camera); "
                    "start the node with mode:=stereo or use scale_mode model, none or camera_height")
        return None

    def _set_scale_mode(self, values) -> None:
        """A new scale source starts from scratch (a stereo scale must not leak into camera_height)."""
        self.requested_scale_mode = values.get("scale_mode", self.requested_scale_mode)
        self._decision_key = None                  # auto decides again on the next frame
        mode = "none" if self.requested_scale_mode == "auto" else self.requested_scale_mode
        self.scaler = ScaleEstimator(mode, camera_height=self.scaler.camera_height, smoothing=self.scaler.smoothing)

    def _resolve_scale(self, frame: Frame) -> None:
        """scale_mode auto: decide, per model and camera, whether the model's metres hold (metric_trust)."""
        width = frame.image.shape[1]
        hfov = horizontal_fov_deg(frame.k, width)
        domain = str(self.get_parameter("domain").value)
        key = (id(self.model), round(hfov, 1), domain, self.requested_scale_mode)
        if key == self._decision_key:
            return
        self._decision_key = key
        decision = choose_scale_source(self.requested_scale_mode, self.model.meta.raw, hfov, domain,
                                       have_stereo=self.get_parameter("mode").value == "stereo")
        self.scale_decision = decision
        if self.requested_scale_mode == "auto" and decision.source != self.scaler.mode:
            self.scaler = ScaleEstimator(decision.source, camera_height=self.scaler.camera_height,
                                         smoothing=self.scaler.smoothing)
        # One call per severity: rclpy refuses a call site whose severity changes between calls.
        message = f"scale: {decision.source} ({decision.reason})"
        if decision.trusted or self.requested_scale_mode != "auto":
            self.get_logger().info(message)
        else:
            self.get_logger().warning(message)

    @property
    def adapter(self):
        """The running OnlineAdapter, or None with adapt off."""
        return self.adaptation.adapter if self.adaptation is not None else None

    def release(self) -> None:
        if self.adaptation is not None:                   # None before configure, or when it failed before it
            self.adaptation.stop()
            self.adaptation = None

    def on_model_swapped(self) -> None:
        self.estimator = DepthEstimator(self.model)
        self._decision_key = None                  # another model: auto decides again

    def scale_info(self) -> tuple[str, float]:
        if self.scaler.mode == "model" and not self.model.meta.metric_scale:
            return relative_because("the model is not metric"), self.scaler.scale
        if self.requested_scale_mode == "auto" and self.scale_decision is not None:
            d = self.scale_decision
            label = "model (metric)" if d.source == "model" else self.scaler.source()
            return f"auto: {label}; {d.reason}", self.scaler.scale
        return self.scaler.source(), self.scaler.scale

    def process(self, frame: Frame) -> None:
        stamp = stamp_to_sec(frame.header.stamp)
        if self.model.recurrent and self._last_stamp is not None and stamp < self._last_stamp:
            self.model.reset_state()      # bag loop / time jump: a recurrent model starts a new sequence
        self._last_stamp = stamp
        self._resolve_scale(frame)
        net_in = self.model.preprocess(frame.image, frame.encoding)
        k_net = self.model.intrinsics_for_net(frame.k, (frame.image.shape[1], frame.image.shape[0]))
        depth = self.estimator(net_in, fx=float(k_net[0, 0]))
        if frame.right is not None and not self.scaler.frozen:
            self.scaler.observe(self._stereo_ratio(frame, depth))
        elif self.scaler.mode == "camera_height":
            self.scaler.observe_depth(depth, k_net)
        depth = depth * np.float32(self.scaler.scale)
        self.depth_pub.publish(image_to_msg(depth, "32FC1", frame.header))
        if self.depth_sink is not None:
            self.depth_sink.put(stamp_to_ns(frame.header.stamp), depth)
        h, w = depth.shape
        self.info_pub.publish(rectified_camera_info(k_net, w, h, frame.header))
        if self.get_parameter("publish_color").value and self.color_pub.get_subscription_count():
            from vode_ros.core.colormap import depth_colormap

            color = depth_colormap(depth, vmin=0.5, vmax=float(self.get_parameter("color_max_depth").value))
            self.color_pub.publish(image_to_msg(color, "bgr8", frame.header))
        if self.get_parameter("publish_points").value:
            self.points_pub.publish(pointcloud_msg(depth, k_net, int(self.get_parameter("points_stride").value),
                                                   frame.header))
        self.adaptation.add_frame(net_in, k_net, stamp, frame.right, frame.baseline)   # after publishing

    def _stereo_ratio(self, frame: Frame, depth: np.ndarray) -> float | None:
        """Stereo depth / network depth at the network resolution (SGBM on the resized pair)."""
        import cv2

        from vode_ros.core.image_codec import to_gray

        h, w = depth.shape
        left = cv2.resize(to_gray(frame.image, frame.encoding), (w, h), interpolation=cv2.INTER_AREA)
        right = cv2.resize(frame.right, (w, h), interpolation=cv2.INTER_AREA)
        fx = frame.k[0, 0] * w / frame.image.shape[1]
        ref = stereo_depth(left, right, fx, frame.baseline, num_disparities=32)
        return median_ratio(ref, depth)


def main(args=None) -> int:
    return run_single(DepthNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
