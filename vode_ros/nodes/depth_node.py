"""Depth node: camera image + CameraInfo -> depth image (32FC1, metres, REP-118).

Publishes, with the input image's header (same stamp and optical frame):
  depth/image        sensor_msgs/Image 32FC1, metres, at the network's resolution; in mode stereo
                     the pair's SGBM fused with the scaled net (fuse_stereo, core.depth_fusion)
  depth/confidence   32FC1 0..1 beside a fused depth: probability the pixel is within 10 % (mode stereo)
  depth/camera_info  the pinhole camera of that image: the rectified input camera (P) rescaled to
                     that resolution (as image_proc resize), no distortion
  depth/color        bgr8 colourised inverse depth, for viewers
  depth/points       sensor_msgs/PointCloud2 (xyz, decimated), when publish_points is true
  vode/status        vode_ros_msgs/VodeStatus per frame (with the scale in use); /diagnostics 1 Hz
Service ~/reload_model (std_srvs/Trigger) swaps in the model found in model_dir.

The per-frame work (preprocessing, inference, scale) is runtime.depth_pipeline.DepthPipeline; this
node turns messages and parameters into its inputs and its depth into messages.

Online adaptation (parameter adapt, off by default; vode_ros.tools.adaptation): the frames also feed
a replay buffer; a background thread fine-tunes the model's training method on them and swaps
improved weights in (held-out guard with rollback). Service ~/save_adapted (std_srvs/Trigger)
writes the accepted weights to adapt_save_dir (restart with model_dir:=<adapt_save_dir>). After
each accepted swap, <adapt_save_dir>/live/ holds depth.onnx + pose.onnx and the odometry node
(adapt_odometry_node) gets model_dir:=<adapt_save_dir>/live and ~/reload_model. Adaptation
counters go to /diagnostics as a second status, "vode_ros: depth_node adaptation".
"""
from __future__ import annotations


from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from vode_ros.nodes.adaptation_hook import AdaptationHook
from vode_ros.nodes.base import VodeNodeBase
from vode_ros.nodes.camera_input import Frame
from vode_ros.nodes.ros_msgs import image_to_msg, pointcloud_msg, rectified_camera_info, stamp_to_ns
from vode_ros.nodes.shutdown import run_single
from vode_ros.runtime.depth_pipeline import DepthPipeline, DepthSettings
from vode_ros.runtime.scale import NODE_MODES
from vode_ros.runtime.frame_share import FrameShare


class DepthNode(VodeNodeBase):
    role = "depth"

    def __init__(self, depth_cache=None, frame_share: FrameShare | None = None, **kwargs):
        # depth_cache (runtime.pose.depth_input.DepthCache): an odometry node in the same process
        # takes the depth from here instead of from depth/image (vode run). frame_share: the SGBM
        # maps of the pairs, shared with that odometry node (one match per pair); None: its own.
        self.depth_sink = depth_cache
        self.frame_share = frame_share or FrameShare()
        self.adaptation: AdaptationHook | None = None     # made at configure
        super().__init__("depth_node", **kwargs)

    def declare(self) -> None:
        self._declare("scale_mode", "auto", "auto | model | none | stereo | stereo_start | camera_height; "
                      "auto: in mode stereo the stereo pair; else the model's metres where it was trained on a "
                      "camera, domain and kind of scene like this one, else none (relative, said so on vode/status)",
                      choices=NODE_MODES)
        self._declare("domain", "", "what the camera sees, e.g. driving or indoor ('' = not said): with "
                      "scale_mode auto a model trained on another domain is not trusted for metres")
        self._declare("camera_height", 1.65, "camera height over the ground, m (scale_mode camera_height)",
                      low=0.05, high=10.0)
        self._declare("scale_smoothing", 0.9, "weight of the previous scale estimate (EMA)", low=0.0, high=1.0)
        self._declare("fuse_stereo", True, "mode stereo: publish the pair's SGBM fused with the scaled net "
                      "(SGBM where valid, the net in holes and far range) and depth/confidence", live=False)
        self._declare("publish_color", True, "publish depth/color (bgr8)")
        self._declare("color_max_depth", 40.0, "depth shown darkest in depth/color, m", low=0.6, high=10000.0)
        self._declare("publish_points", False, "publish depth/points (PointCloud2)")
        self._declare("points_stride", 4, "keep every n-th pixel in rows and columns for depth/points",
                      low=1, high=64)
        AdaptationHook.declare(self)

    def build(self) -> None:
        p = self.params.value
        settings = DepthSettings(p("scale_mode"), str(p("domain")), float(p("camera_height")),
                                 float(p("scale_smoothing")), have_stereo=p("mode") == "stereo",
                                 fuse_stereo=bool(p("fuse_stereo")))
        self.pipeline = DepthPipeline(self.model, settings, self.frame_share)
        self.params.on_change(["scale_mode", "domain"], self._set_scale_mode)
        self.params.on_change(["camera_height"], lambda v: self._set_scaler("camera_height", float(v["camera_height"])))
        self.params.on_change(["scale_smoothing"], lambda v: self._set_scaler("smoothing", float(v["scale_smoothing"])))
        # Reliable depth 5: consumers (recorders, mapping) should not lose depth frames.
        qos = self.output_qos(5)
        self.depth_pub = self.create_publisher(Image, "depth/image", qos)
        self.info_pub = self.create_publisher(CameraInfo, "depth/camera_info", qos)
        self.color_pub = self.create_publisher(Image, "depth/color", qos)
        self.confidence_pub = self.create_publisher(Image, "depth/confidence", qos)
        self.points_pub = self.create_publisher(PointCloud2, "depth/points", qos)
        self.adaptation = AdaptationHook(self)      # adapt_* parameters, ~/save_adapted; off unless adapt:=true

    @property
    def scaler(self):
        """The scale estimator in use (runtime.scale.ScaleEstimator)."""
        return self.pipeline.scaler

    def check_parameters(self, values) -> str | None:
        if values.get("scale_mode") in ("stereo", "stereo_start") and values.get("mode") != "stereo":
            return (f"scale_mode '{values['scale_mode']}' needs mode:=stereo (the right camera); "
                    "start the node with mode:=stereo or use scale_mode model, none or camera_height")
        return None

    def _set_scale_mode(self, values) -> None:
        mode = values.get("scale_mode", self.pipeline.settings.scale_mode)
        domain = str(values.get("domain", self.pipeline.settings.domain))
        with self.model_lock:                     # between frames
            self.pipeline.set_scale_mode(mode, domain)

    def _set_scaler(self, field: str, value: float) -> None:
        setattr(self.pipeline.settings, "scale_smoothing" if field == "smoothing" else field, value)
        setattr(self.pipeline.scaler, field, value)

    @property
    def adapter(self):
        """The running OnlineAdapter, or None with adapt off."""
        return self.adaptation.adapter if self.adaptation is not None else None

    def release(self) -> None:
        if self.adaptation is not None:                   # None before configure, or when it failed before it
            self.adaptation.stop()
            self.adaptation = None

    def on_model_swapped(self) -> None:
        self.pipeline.set_model(self.model)

    def scale_info(self) -> tuple[str, float]:
        return self.pipeline.scale_info()

    def process(self, frame: Frame) -> None:
        out = self.pipeline.step(frame.image, frame.encoding, stamp_to_ns(frame.header.stamp), frame.k,
                                 right=frame.right, baseline=frame.baseline)
        for level, message in out.notes:          # one call site per severity (rclpy keeps it per site)
            if level == "warning":
                self.get_logger().warning(message)
            else:
                self.get_logger().info(message)
        depth, k_net = out.depth, out.k_net
        self.depth_pub.publish(image_to_msg(depth, "32FC1", frame.header))
        if out.confidence is not None:
            self.confidence_pub.publish(image_to_msg(out.confidence, "32FC1", frame.header))
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
        self.adaptation.add_frame(out.net_input, k_net, stamp_to_ns(frame.header.stamp) * 1e-9, frame.right,
                                  frame.baseline)   # after publishing


def main(args=None) -> int:
    return run_single(DepthNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
