"""Depth node: camera image + CameraInfo -> depth image (32FC1, metres, REP-118).

Publishes, with the input image's header (same stamp and optical frame):
  depth/image        sensor_msgs/Image 32FC1, metres, at the network's resolution
  depth/camera_info  the input CameraInfo rescaled to that resolution (as image_proc resize)
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

from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_srvs.srv import Trigger

from vode_ros.runtime.inference import DepthEstimator, OnnxModel, default_model_dir
from vode_ros.nodes.base import ERROR, OK, WARN, Frame, VodeNodeBase, run_single
from vode_ros.nodes.ros_msgs import image_to_msg, pointcloud_msg, scaled_camera_info, stamp_to_sec
from vode_ros.runtime.scale import ScaleEstimator, median_ratio, stereo_depth


class DepthNode(VodeNodeBase):
    role = "depth"

    def __init__(self, **kwargs):
        super().__init__("depth_node", **kwargs)
        self._declare("scale_mode", "model", "model | none | stereo | stereo_start | camera_height")
        self._declare("camera_height", 1.65, "camera height over the ground, m (scale_mode camera_height)",
                      floating_point_range=[FloatingPointRange(from_value=0.05, to_value=10.0, step=0.0)])
        self._declare("scale_smoothing", 0.9, "weight of the previous scale estimate (EMA)",
                      floating_point_range=[FloatingPointRange(from_value=0.0, to_value=1.0, step=0.0)])
        self._declare("publish_color", True, "publish depth/color (bgr8)")
        self._declare("color_max_depth", 40.0, "depth shown darkest in depth/color, m")
        self._declare("publish_points", False, "publish depth/points (PointCloud2)")
        self._declare("points_stride", 4, "keep every n-th pixel in rows and columns for depth/points",
                      integer_range=[IntegerRange(from_value=1, to_value=64, step=1)])
        p = self.get_parameter
        self.scaler = ScaleEstimator(p("scale_mode").value, camera_height=float(p("camera_height").value),
                                     smoothing=float(p("scale_smoothing").value))
        if self.scaler.needs_stereo and self.mode != "stereo":
            raise ValueError(f"scale_mode '{self.scaler.mode}' needs mode:=stereo (the right camera)")
        self.estimator = DepthEstimator(self.model)
        self._last_stamp: float | None = None
        # Reliable depth 5: consumers (recorders, mapping) should not lose depth frames.
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.depth_pub = self.create_publisher(Image, "depth/image", qos)
        self.info_pub = self.create_publisher(CameraInfo, "depth/camera_info", qos)
        self.color_pub = self.create_publisher(Image, "depth/color", qos)
        self.points_pub = self.create_publisher(PointCloud2, "depth/points", qos)
        self.adapter = None
        self._declare_adapt()
        self.create_service(Trigger, "~/save_adapted", self._on_save_adapted)
        if p("adapt").value:
            self._start_adapter()

    # -- online adaptation (vode_ros.tools.adaptation) -------------------------------------------------
    def _declare_adapt(self) -> None:
        rng_i = lambda lo, hi: {"integer_range": [IntegerRange(from_value=lo, to_value=hi, step=1)]}  # noqa: E731
        rng_f = lambda lo, hi: {"floating_point_range": [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]}  # noqa: E731
        self._declare("adapt", False, "fine-tune the model online on the incoming frames (needs torch)")
        self._declare("adapt_checkpoint", "", "torch checkpoint of the model in use ('' = <model_dir>/checkpoint.pt "
                      "if there, else the shipped models/sfmlearner_stereo.pt)")
        self._declare("adapt_save_dir", "", "~/save_adapted writes here; accepted swaps go to <dir>/live "
                      "('' = ~/.ros/vode_ros/adapted)")
        self._declare("adapt_buffer_size", 64, "replay buffer, frames", **rng_i(4, 4096))
        self._declare("adapt_holdout_every", 5, "every n-th frame is held out (judges, never trained on)", **rng_i(2, 1000))
        self._declare("adapt_holdout_size", 8, "held-out snippets kept", **rng_i(1, 1024))
        self._declare("adapt_batch_size", 2, "snippets per gradient step", **rng_i(1, 64))
        self._declare("adapt_lr", 5e-5, "Adam learning rate", **rng_f(1e-8, 1.0))
        self._declare("adapt_max_steps_per_second", 1.0, "upper bound of gradient steps per second", **rng_f(0.001, 1000.0))
        self._declare("adapt_threads", 1, "torch threads of the adaptation", **rng_i(1, 64))
        self._declare("adapt_check_every", 10, "steps between held-out checks (accept + swap, or roll back)",
                      **rng_i(1, 100000))
        self._declare("adapt_nice", 10, "niceness added to the adaptation thread (inference keeps priority)",
                      **rng_i(0, 19))
        self._declare("adapt_odometry_node", "odometry_node", "odometry node to reload after a swap ('' = none)")

    def _adapt_checkpoint(self) -> Path:
        p = self.get_parameter
        if p("adapt_checkpoint").value:
            return Path(p("adapt_checkpoint").value).expanduser()
        model_dir = p("model_dir").value
        if model_dir and (Path(model_dir) / "checkpoint.pt").is_file():
            return Path(model_dir) / "checkpoint.pt"     # a folder written by ~/save_adapted
        return default_model_dir() / "sfmlearner_stereo.pt"

    def _start_adapter(self) -> None:
        from vode_ros.tools.adaptation import AdaptationError, AdaptSettings, OnlineAdapter

        p = self.get_parameter
        ckpt = self._adapt_checkpoint()
        if not ckpt.is_file():
            raise ValueError(f"adapt: torch checkpoint {ckpt} not found; set adapt_checkpoint (a nets-only "
                             "checkpoint of the model in model_dir)")
        settings = AdaptSettings(
            checkpoint=str(ckpt), save_dir=p("adapt_save_dir").value or str(Path.home() / ".ros/vode_ros/adapted"),
            buffer_size=int(p("adapt_buffer_size").value), holdout_every=int(p("adapt_holdout_every").value),
            holdout_size=int(p("adapt_holdout_size").value), batch_size=int(p("adapt_batch_size").value),
            lr=float(p("adapt_lr").value), max_steps_per_second=float(p("adapt_max_steps_per_second").value),
            threads=int(p("adapt_threads").value), check_every=int(p("adapt_check_every").value),
            nice=int(p("adapt_nice").value), stereo=self.mode == "stereo")
        try:
            self.adapter = OnlineAdapter(settings, self.model.meta, on_accept=self._swap_in_adapted,
                                         logger=self.get_logger())
        except (AdaptationError, ValueError) as exc:
            raise ValueError(f"adapt: {exc}") from exc
        name = p("adapt_odometry_node").value
        self._odom_set = self.create_client(SetParameters, f"{name}/set_parameters") if name else None
        self._odom_reload = self.create_client(Trigger, f"{name}/reload_model") if name else None
        self._odom_warned = False
        self.create_timer(1.0, self._publish_adapt_diagnostics)
        self.adapter.start()
        self.get_logger().info(f"online adaptation on: {ckpt}, {settings.max_steps_per_second} steps/s max, "
                               f"{settings.threads} torch thread(s), stereo {self.adapter.use_stereo}, "
                               f"saves to {settings.save_dir}")

    def _swap_in_adapted(self, live_dir: Path) -> None:
        """Adapter thread: build the new session here, swap the reference under model_lock."""
        p = self.get_parameter
        new = OnnxModel(live_dir / "depth.onnx", list(p("providers").value), int(p("threads").value),
                        expected_kind="depth")
        with self.model_lock:
            self.model = new
            self.on_model_swapped()
        self._sync_odometry(live_dir)

    def _sync_odometry(self, live_dir: Path) -> None:
        """Point the odometry node at live_dir and ask it to reload (asynchronous, never blocks)."""
        if self._odom_reload is None or not (live_dir / "pose.onnx").is_file():
            return
        if not (self._odom_set.service_is_ready() and self._odom_reload.service_is_ready()):
            if not self._odom_warned:
                self._odom_warned = True
                self.get_logger().info(f"adaptation: no {self.get_parameter('adapt_odometry_node').value} "
                                       "services; its pose net is not updated")
            return
        req = SetParameters.Request(parameters=[Parameter("model_dir", value=str(live_dir)).to_parameter_msg()])

        def reload(future):
            try:
                res = future.result()
                if res is None or not all(r.successful for r in res.results):
                    self.problem(f"adaptation: could not set model_dir on the odometry node: {res}")
                    return
                self._odom_reload.call_async(Trigger.Request()).add_done_callback(reloaded)
            except Exception as exc:   # node shutting down
                self.get_logger().debug(f"adaptation: odometry reload skipped: {exc}")

        def reloaded(future):
            try:
                res = future.result()
            except Exception as exc:
                res = None
                self.get_logger().debug(f"adaptation: odometry reload: {exc}")
            if res is not None and not res.success:
                self.problem(f"adaptation: odometry node reload failed: {res.message}")

        self._odom_set.call_async(req).add_done_callback(reload)

    def _on_save_adapted(self, request, response):
        if self.adapter is None:
            response.success, response.message = False, "adapt is off (start the node with adapt:=true)"
            return response
        try:
            written = self.adapter.save()
        except Exception as exc:
            response.success, response.message = False, f"save failed: {exc.__class__.__name__}: {exc}"
            self.problem(response.message)
            return response
        out = Path(next(iter(written.values()))).parent
        s = self.adapter.stats
        response.success = True
        response.message = (f"saved version {s.version} ({s.steps} steps, {s.swaps} swaps, {s.rollbacks} rollbacks) "
                            f"to {out}: {', '.join(sorted(written))}; load with model_dir:={out}")
        return response

    def _publish_adapt_diagnostics(self) -> None:
        a = self.adapter
        s = a.stats
        if s.failed:
            level, message = ERROR, f"adaptation {s.failed}"
        elif s.last_check == "rolled back":
            level, message = WARN, (f"rolled back: held-out loss {s.heldout_before:.5f} -> {s.heldout_after:.5f} "
                                    f"({s.rollbacks} rollbacks, {s.swaps} swaps)")
        else:
            level, message = OK, f"{s.state}: {s.steps} steps, {s.swaps} swaps, {s.rollbacks} rollbacks"
        status = DiagnosticStatus(level=level, name=f"vode_ros: {self.get_name()} adaptation", message=message,
                                  hardware_id=self.get_parameter("image_topic").value,
                                  values=[KeyValue(key=k, value=v) for k, v in a.diagnostics()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        if self.adapter is not None:
            self.adapter.stop()
        super().destroy_node()

    def on_model_swapped(self) -> None:
        self.estimator = DepthEstimator(self.model)

    def scale_info(self) -> tuple[str, float]:
        if self.scaler.mode == "model" and not self.model.meta.metric_scale:
            return "none (relative; the model is not metric)", self.scaler.scale
        return self.scaler.source(), self.scaler.scale

    def process(self, frame: Frame) -> None:
        stamp = stamp_to_sec(frame.header.stamp)
        if self.model.recurrent and self._last_stamp is not None and stamp < self._last_stamp:
            self.model.reset_state()      # bag loop / time jump: a recurrent model starts a new sequence
        self._last_stamp = stamp
        net_in = self.model.preprocess(frame.image, frame.encoding)
        k_net = self.model.intrinsics_for_net(frame.k, (frame.image.shape[1], frame.image.shape[0]))
        depth = self.estimator(net_in, fx=float(k_net[0, 0]))
        if frame.right is not None and not self.scaler.frozen:
            self.scaler.observe(self._stereo_ratio(frame, depth))
        elif self.scaler.mode == "camera_height":
            self.scaler.observe_depth(depth, k_net)
        depth = depth * np.float32(self.scaler.scale)
        self.depth_pub.publish(image_to_msg(depth, "32FC1", frame.header))
        h, w = depth.shape
        self.info_pub.publish(scaled_camera_info(self.camera_info, k_net, w, h, frame.header))
        if self.get_parameter("publish_color").value and self.color_pub.get_subscription_count():
            from vode_ros.core.colormap import depth_colormap

            color = depth_colormap(depth, vmin=0.5, vmax=float(self.get_parameter("color_max_depth").value))
            self.color_pub.publish(image_to_msg(color, "bgr8", frame.header))
        if self.get_parameter("publish_points").value:
            self.points_pub.publish(pointcloud_msg(depth, k_net, int(self.get_parameter("points_stride").value),
                                                   frame.header))
        if self.adapter is not None:     # after publishing: a buffer append, never a wait on training
            self.adapter.add_frame(net_in, k_net, stamp_to_sec(frame.header.stamp), frame.right, frame.baseline)

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
