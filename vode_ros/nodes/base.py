"""What the depth and odometry nodes share: parameters, model, camera input, health.

A node here is a thin adapter: it decodes messages, hands numpy to vode_ros.runtime.inference /
vode_ros.runtime.odometry / vode_ros.runtime.scale and turns results back into messages. Bad input is
logged (throttled per problem), counted per reason, reported on /diagnostics and vode/status,
and never stops the node. Every input frame ends in exactly one of: out, dropped (queue
policy), rejected (with a reason); until then it is pending (runtime.accounting).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.client import Client
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.publisher import Publisher
from rclpy.service import Service
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_srvs.srv import Trigger

from vode_ros.core.image_codec import ImageDecodeError, to_gray
from vode_ros.core.input_checks import camera_info_problem, image_size_problem
from vode_ros.nodes.params import ParameterTable, ParamSpec
from vode_ros.core.rectify import (RECTIFY_MODES, Calibration, Rectifier, calibration_from_info, intrinsics_problem,
                                   rectification_needed, rectification_problem, rectifier_for)
from vode_ros.nodes.ros_msgs import image_from_msg, stamp_to_sec
from vode_ros.runtime.accounting import FrameAccounts
from vode_ros.runtime.inference import ModelLoadError, OnnxModel, default_model_dir, provider_problem
from vode_ros.runtime.latest_worker import LatestFrameWorker
from vode_ros.runtime.scale import METRIC_MODEL, RELATIVE
from vode_ros.runtime.stereo_sync import StereoPairer
from vode_ros_msgs.msg import VodeStatus

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
LOG_EVERY_S = 5.0         # one log line per problem (reason) and interval
RECENT_S = 10.0           # a problem keeps /diagnostics at WARN this long after it last happened


class FrameRejected(Exception):
    """Raised by a node's process() for a frame it cannot use; counted under `reason`."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


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
    return float(-tx / fx) if fx > 0 and tx < 0 and np.isfinite(tx / fx) else None


def _topic_problem(value: str) -> str | None:
    return None if value.strip() else "give a topic name"


class VodeNodeBase(LifecycleNode):
    """A managed (lifecycle) node, REP-2002-style: parameters are declared at construction;
    configure loads the model and creates the outputs, activate subscribes to the camera,
    deactivate unsubscribes (frames already taken finish), cleanup releases the model and every
    output. With ``autostart`` (default) the node configures and activates itself, so it runs
    like a plain node; ``autostart:=false`` leaves the transitions to a lifecycle manager
    (``ros2 lifecycle set /depth_node configure``)."""

    role = "depth"        # which model file and kind: depth | pose
    uses_right = True     # pairs the right image in mode stereo (the pose net needs only the left)

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self.model: OnnxModel | None = None
        self.configure_error: BaseException | None = None
        self._unconfigured_entities: list | None = None   # what the node had before configure
        self._input_subs: list = []
        try:
            self.params = ParameterTable(self, self.check_parameters)
            self._declare("autostart", True, "configure and activate at start-up; false: wait for a lifecycle "
                          "manager (ros2 lifecycle set <node> configure, then activate)", live=False)
            self._declare_common()
            self.declare()
        except BaseException:
            self.destroy_node()   # a half-built node must not leave handles (or a teardown crash) behind
            raise
        if self.params.value("autostart"):
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                self.destroy_node()
                raise self.configure_error or RuntimeError(f"{name}: configure failed")
            self.trigger_activate()

    # -- lifecycle ----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unconfigured_entities = self._entities()
        try:
            self._build(self.get_name())
            self.build()
            self.finish_start()
        except Exception as exc:  # noqa: BLE001 - reported, and the node stays unconfigured
            self.configure_error = exc
            self._release()
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.configure_error = None
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.params.value
        self._input_subs.append(self.create_subscription(CameraInfo, p("camera_info_topic"), self._on_camera_info,
                                                         self._input_qos, callback_group=self._input_group))
        self._subscribe_image(p("image_topic"), self._on_image)
        if self.stereo:
            self.subscribe_right()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe_inputs()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe_inputs()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    @property
    def lifecycle_state(self) -> str:
        """unconfigured | inactive | active | finalized (or a transition's label)."""
        return self._state_machine.current_state[1]

    def _entities(self) -> list:
        return [*self.publishers, *self.subscriptions, *self.services, *self.clients, *self.timers]

    def _unsubscribe_inputs(self) -> None:
        """No more camera input: images waiting for their CameraInfo or stereo partner are given up."""
        for sub in self._input_subs:
            self.destroy_subscription(sub)
        self._input_subs.clear()
        if getattr(self, "pairer", None) is None:
            return
        for _ in range(len(self._parked) + len(self._parked_pairs)):
            self.accounts.rejected("inactive")
        self._parked.clear()
        self._parked_pairs.clear()
        for _ in self.pairer.flush_left():
            self.accounts.rejected("inactive")

    def _stop_work(self) -> None:
        """Stop the worker (frames still queued count as rejected, reason shutdown) and the subclass's threads."""
        worker = getattr(self, "worker", None)
        if worker is not None:
            for _ in worker.stop():
                self.accounts.rejected("shutdown")
            self.worker = None
        self.release()

    def _release(self) -> None:
        """Undo configure: stop the work, destroy what configure created."""
        self._stop_work()
        if self._unconfigured_entities is None:       # never configured (a shutdown from unconfigured)
            return
        # Everything the node gained since configure began (outputs, services, timers, and what a
        # live parameter change added later) goes; the lifecycle and parameter services stay.
        before = self._unconfigured_entities
        destroy = {Publisher: self.destroy_publisher, Subscription: self.destroy_subscription,
                   Service: self.destroy_service, Client: self.destroy_client, Timer: self.destroy_timer}
        for entity in self._entities():
            if not any(entity is e for e in before):
                next(fn for kind, fn in destroy.items() if isinstance(entity, kind))(entity)
        self._unconfigured_entities = None
        self.params.stop()
        self.uses_right = type(self).uses_right
        self.model = None

    def release(self) -> None:
        """Subclasses stop what they started in build() (threads; the entities go by themselves)."""

    def declare(self) -> None:
        """Subclasses declare their parameters here (at construction, before configure)."""

    def _declare_common(self) -> None:
        self._declare("model_dir", "", "folder with depth.onnx and pose.onnx ('' = the shipped models); "
                      "a change reloads the model")
        self._declare("providers", ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                      "ONNX Runtime execution providers in order of preference", check=provider_problem)
        self._declare("threads", 0, "ONNX Runtime intra-op threads (0 = ORT default)", low=0, high=64)
        self._declare("mode", "mono", "mono | stereo (stereo pairs the right image, for metric scale)",
                      choices=("mono", "stereo"), live=False)
        self._declare("image_topic", "/camera/left/image_raw", "input camera image (left in stereo)",
                      check=_topic_problem, live=False)
        self._declare("camera_info_topic", "/camera/left/camera_info", "CameraInfo of image_topic",
                      check=_topic_problem, live=False)
        self._declare("right_image_topic", "/camera/right/image_raw", "right image (mode stereo)",
                      check=_topic_problem, live=False)
        self._declare("right_camera_info_topic", "/camera/right/camera_info", "right CameraInfo (mode stereo)",
                      check=_topic_problem, live=False)
        self._declare("image_transport", "raw", "raw (sensor_msgs/Image) | compressed (<topic>/compressed, jpeg/png)",
                      choices=("raw", "compressed"), live=False)
        self._declare("reliable_input", False, "subscribe RELIABLE + KEEP_ALL and process every frame (bag replay "
                      "with `vode bag play --reliable`); false: sensor-data QoS, newest frame wins (live cameras)",
                      live=False)
        self._declare("reliable_queue_size", 8, "frames waiting for the model with reliable_input (then the "
                      "subscription blocks and back-pressure reaches the publisher)", low=1, high=1000, live=False)
        self._declare("rectify", "auto", "auto | on | off: remap images by their CameraInfo (K, D, R -> P) into "
                      "the rectified pinhole image, as image_proc does; auto: unless the topic is an image_rect",
                      choices=RECTIFY_MODES)
        self._declare("stereo_slop", 0.02, "max stamp difference of a stereo pair, s", low=0.0, high=1.0)
        self._declare("stereo_timeout", 1.0, "mode stereo: after this long without a right image the left images "
                      "go on alone (depth keeps the last scale)", low=0.05, high=60.0)
        self._declare("max_image_pixels", 4096 * 3072, "larger images are rejected before decoding (0 = no limit)",
                      low=0, high=1_000_000_000)

    def _build(self, name: str) -> None:
        self.accounts = FrameAccounts()
        self._problems: dict[str, tuple[str, float]] = {}     # reason -> (last message, monotonic time)
        self._logged: dict[str, float] = {}
        p = self.params.value
        self.mode = p("mode")
        self.model_lock = threading.Lock()
        self.model = self.load_model()
        self.camera_info: CameraInfo | None = None
        self.calibration: Calibration | None = None       # of camera_info
        self._info_problem: str | None = None
        self.right_info: CameraInfo | None = None
        self.right_calibration: Calibration | None = None
        self._right_info_problem: str | None = None
        self.rectifying: dict[str, str] = {}                # topic -> how its images are remapped (diagnostics)
        # Images (and stereo pairs) that arrived before their first CameraInfo wait here: the newest
        # one for a live camera, up to reliable_queue_size with reliable input (nothing may be lost).
        hold = int(p("reliable_queue_size")) if p("reliable_input") else 1
        self._parked: deque = deque()
        self._parked_pairs: deque = deque()
        self._hold = hold
        self._first_left: float | None = None      # stamps (s) of the first left and the newest right image
        self._last_right: float | None = None
        self._newest_left: float | None = None      # stamp of the last left image (stereo)
        self._unreported = False       # a frame was rejected after the last vode/status
        self.last_total_ms = 0.0
        self.last_process_ms = 0.0
        # Reliable input delivers every image, but left and right may arrive a few frames apart.
        pair_queue = max(5, 2 * int(p("reliable_queue_size"))) if p("reliable_input") else 5
        self.pairer = StereoPairer(slop=float(p("stereo_slop")), queue_size=pair_queue)
        self.params.on_change(["stereo_slop"], lambda v: setattr(self.pairer, "slop", float(v["stereo_slop"])))
        self.params.on_change(["model_dir", "providers", "threads"], self._reload_with)
        self.status_pub = self.create_publisher(VodeStatus, "vode/status", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        reliable = bool(p("reliable_input"))
        # Input callbacks in their own group: a reliable subscription blocked by back-pressure
        # must not hold up the diagnostics timer or the parameter services.
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._input_qos = (QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
                           if reliable else qos_profile_sensor_data)
        self.create_service(Trigger, "~/reload_model", self._on_reload)
        capacity = int(p("reliable_queue_size")) if reliable else 1
        self.worker = LatestFrameWorker(self._process_safely, name=f"{name}-inference", capacity=capacity,
                                        blocking=reliable, on_drop=lambda _frame: self.accounts.dropped())
        self.create_timer(1.0, self._tick)

    def build(self) -> None:
        """Subclasses declare their parameters and publishers here (a failure tears the node down)."""

    def output_qos(self, depth: int) -> QoSProfile:
        """Reliable outputs. With reliable_input (a lossless replay) the history holds 100 samples, so a
        recorder that falls behind on a busy machine is not overrun (a writer drops what leaves it)."""
        return QoSProfile(depth=max(depth, 100) if self.params.value("reliable_input") else depth,
                          reliability=ReliabilityPolicy.RELIABLE)

    def finish_start(self) -> None:
        """After build(): the checks across parameters, then parameter changes apply live."""
        problem = self.check_parameters({n: self.params.value(n) for n in self.params.specs})
        if problem:
            raise ValueError(problem)
        self.params.running = True

    @property
    def stereo(self) -> bool:
        return self.mode == "stereo" and self.uses_right

    # -- counters (read by tools and tests) --------------------------------------------------
    @property
    def frames_in(self) -> int:
        return self.accounts.frames_in

    @property
    def frames_out(self) -> int:
        return self.accounts.frames_out

    @property
    def frames_rejected(self) -> int:
        return self.accounts.frames_rejected

    # -- parameters and model -------------------------------------------------------------
    def _declare(self, name: str, default, description: str, *, low: float | None = None, high: float | None = None,
                 choices: tuple[str, ...] | None = None, length: int | None = None, check=None, live: bool = True,
                 integer_range=None, floating_point_range=None):
        rng = (integer_range or floating_point_range or [None])[0]
        if rng is not None:
            low, high = rng.from_value, rng.to_value
        return self.params.declare(ParamSpec(name, default, description, low=low, high=high, choices=choices,
                                             length=length, check=check, live=live))

    def check_parameters(self, values: dict[str, Any]) -> str | None:
        """Checks across parameters (subclasses); the problem, or None."""
        return None

    def load_model(self, values: dict[str, Any] | None = None) -> OnnxModel:
        v = {n: self.params.value(n) for n in ("model_dir", "providers", "threads")}
        v.update(values or {})
        model_dir = Path(v["model_dir"] or default_model_dir())
        model = OnnxModel(model_dir / f"{self.role}.onnx", list(v["providers"]), int(v["threads"]),
                          expected_kind=self.role)
        self.get_logger().info(f"{model.path} ({model.meta.method}, {model.meta.width}x{model.meta.height} "
                               f"{model.meta.color}) runs on {model.provider}")
        return model

    def _reload_with(self, values: dict[str, Any]) -> None:
        new = self.load_model(values)      # ModelLoadError: the parameter change is refused with it
        with self.model_lock:
            self.model = new
            self.on_model_swapped()

    def _on_reload(self, request, response):
        """Load the model again from model_dir and swap it in."""
        try:
            self._reload_with({})
        except (ModelLoadError, ValueError) as exc:
            response.success, response.message = False, str(exc)
            self.problem("reload_failed", f"reload failed, keeping {self.model.path}: {exc}")
            return response
        response.success, response.message = True, f"loaded {self.model.path} on {self.model.provider}"
        return response

    def on_model_swapped(self) -> None:
        """Subclasses rebuild what depends on the model (called under model_lock)."""

    # -- input ------------------------------------------------------------------------------
    def _subscribe_image(self, topic: str, callback) -> None:
        if self.params.value("image_transport") == "compressed":
            typ, topic = CompressedImage, topic.rstrip("/") + "/compressed"
        else:
            typ = Image
        self._input_subs.append(self.create_subscription(typ, topic, callback, self._input_qos,
                                                         callback_group=self._input_group))

    def subscribe_right(self) -> None:
        """The right image and CameraInfo (mode stereo, at activation); a subclass that needs the right
        image only under some parameters sets ``uses_right`` in build()."""
        p = self.params.value
        self._input_subs.append(self.create_subscription(CameraInfo, p("right_camera_info_topic"), self._on_right_info,
                                                         self._input_qos, callback_group=self._input_group))
        self._subscribe_image(p("right_image_topic"), self._on_right_image)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        cal = calibration_from_info(msg)
        problem = camera_info_problem(list(msg.k), msg.width, msg.height) or intrinsics_problem(cal)
        if problem:
            # Never publish depth or odometry with these intrinsics: images wait for a good one.
            self.camera_info = self.calibration = None
            self._info_problem = f"CameraInfo on {self.params.value('camera_info_topic')} unusable: {problem}"
            self.problem("camera_info_invalid", self._info_problem)
            return
        self.camera_info, self.calibration, self._info_problem = msg, cal, None
        while self._parked:
            self._accept(self._parked.popleft())

    def _on_right_info(self, msg: CameraInfo) -> None:
        cal = calibration_from_info(msg)
        problem = camera_info_problem(list(msg.k), msg.width, msg.height) or intrinsics_problem(cal)
        self.right_info, self.right_calibration = msg, (None if problem else cal)
        self._right_info_problem = problem and f"right CameraInfo on " \
            f"{self.params.value('right_camera_info_topic')} unusable: {problem}"
        while self._parked_pairs:
            self._submit_pair(self._parked_pairs.popleft())

    def rectifier(self, cal: Calibration, topic: str) -> tuple[Rectifier | None, str]:
        """(the remap the images of `topic` go through, or None to use them as they come; how, for /diagnostics)."""
        mode = self.params.value("rectify")
        if not rectification_needed(cal, mode, topic):
            return None, ("off" if mode == "off" else "not needed")
        why = rectification_problem(cal)
        if why:
            self.problem("rectify_unavailable", f"images of {topic} go on unrectified: {why}")
            return None, f"unavailable: {why}"
        return rectifier_for(cal), f"on ({cal.describe()})"

    def _rectified(self, image: np.ndarray, cal: Calibration, topic: str) -> tuple[np.ndarray, np.ndarray]:
        """(image, (3, 3) K) as the rectified pinhole camera of `cal` sees it: remapped by K, D, R -> P where
        the image is raw. Where its distortion cannot be undone, the image as it came with the raw K, and a
        warning: a camera with an unusual model keeps working as before rectification existed."""
        rectifier, how = self.rectifier(cal, topic)
        if rectifier is not None and self.rectifying.get(topic) != how:
            self.get_logger().info(f"rectifying the images of {topic} in the node ({cal.describe()}); rectify "
                                   "elsewhere (image_proc) and subscribe to image_rect to save it")
        self.rectifying[topic] = how
        if rectifier is None:
            return image, (cal.k_raw if how.startswith("unavailable") else cal.k_rect)
        return rectifier(image), cal.k_rect

    def _on_image(self, msg) -> None:
        self.accounts.received()
        try:
            self._accept(msg)
        except Exception as exc:  # noqa: BLE001 - whatever slipped past the checks is still accounted
            self.reject("internal_error", f"image not processed: {exc.__class__.__name__}: {exc}")

    def _accept(self, msg) -> None:
        """An input image (already counted in) ends here in exactly one of: submitted, parked, rejected."""
        topic = self.params.value("image_topic")
        if isinstance(msg, Image):
            problem = image_size_problem(msg.width, msg.height, int(self.params.value("max_image_pixels")))
            if problem:
                return self.reject(problem[0], f"image on {topic} rejected: {problem[1]}")
        if self.camera_info is None:
            if self._info_problem:
                return self.reject("camera_info_invalid", f"image on {topic} rejected: {self._info_problem}")
            # A camera publishes image and CameraInfo together, in either order: keep the
            # newest image(s) until the first CameraInfo arrives instead of losing them.
            if len(self._parked) >= self._hold:
                self._parked.popleft()
                self.reject("no_camera_info", f"no CameraInfo yet on {self.params.value('camera_info_topic')}; "
                            "waiting for it before processing images")
            self._parked.append(msg)
            return
        try:
            img, enc = image_from_msg(msg)
        except ImageDecodeError as exc:
            return self.reject("decode", f"image on {topic} rejected: {exc}")
        if isinstance(msg, CompressedImage):
            problem = image_size_problem(img.shape[1], img.shape[0], int(self.params.value("max_image_pixels")))
            if problem:
                return self.reject(problem[0], f"image on {topic} rejected: {problem[1]}")
        cal = self.calibration
        if (img.shape[1], img.shape[0]) != (cal.width, cal.height):
            return self.reject(
                "size_mismatch", f"image is {img.shape[1]}x{img.shape[0]} but CameraInfo says "
                f"{cal.width}x{cal.height}: publish the CameraInfo that belongs to this image stream")
        image, k = self._rectified(img, cal, topic)
        frame = Frame(msg.header, image, enc, k)
        if not self.stereo:
            return self._submit(frame)
        # Silence is measured in stamp time, not wall time: under back-pressure (reliable input) the
        # right images wait behind the left ones without the right camera being silent.
        stamp = stamp_to_sec(msg.header.stamp)
        self._newest_left = stamp
        if self._first_left is None or stamp < self._first_left:
            self._first_left = stamp
        behind = stamp - (self._last_right if self._last_right is not None else self._first_left)
        if behind > float(self.params.value("stereo_timeout")):
            for _ in self.pairer.flush_left():
                self.reject("stereo_unpaired", "left image without a right partner given up")
            self.pairer.drop_right_before(stamp)      # right images too old to ever pair (counted)
            self.problem("right_camera_silent",
                         f"no image on {self.params.value('right_image_topic')} for {behind:.1f} s of left images: "
                         "the right camera is silent; left images go on alone (depth keeps the last scale)")
            return self._submit(frame)
        pair = self.pairer.add_left(stamp, frame)
        self._account_unpaired()
        if pair is not None:
            self._submit_pair(pair)

    def _on_right_image(self, msg) -> None:
        stamp = stamp_to_sec(msg.header.stamp)
        if self._last_right is None or stamp > self._last_right or self._last_right - stamp > 1.0:
            self._last_right = stamp          # (a jump back by more than 1 s: the bag looped)
        try:
            decoded = image_from_msg(msg)
        except ImageDecodeError as exc:
            self.problem("right_decode", f"image on {self.params.value('right_image_topic')} rejected: {exc}")
            return
        pair = self.pairer.add_right(stamp, decoded)
        # A right image older than every left image still to come can never pair: give it up now
        # (the left it belonged to went on alone, or never came).
        oldest_left = self.pairer.left[0][0] if self.pairer.left else self._newest_left
        if oldest_left is not None:
            self.pairer.drop_right_before(oldest_left)
        self._account_unpaired()
        if pair is not None:
            self._submit_pair(pair)

    def _account_unpaired(self) -> None:
        given_up = self.pairer.take_unpaired_left()
        for _ in given_up:
            self.reject("stereo_unpaired", f"stereo pair out of sync: {self.pairer.unpaired} images without a "
                        f"partner within {self.pairer.slop} s (check stereo_slop and that both cameras are "
                        "triggered together)")

    def _submit_pair(self, pair) -> None:
        frame, (right, right_enc) = pair
        if right.shape[:2] != frame.image.shape[:2]:
            return self.reject("stereo_size", f"right image is {right.shape[1]}x{right.shape[0]}, left is "
                               f"{frame.image.shape[1]}x{frame.image.shape[0]}: stereo images must be rectified pairs")
        if self.right_info is None:           # the pair came before the right CameraInfo: it waits for it
            if len(self._parked_pairs) >= self._hold:
                self._parked_pairs.popleft()
                self.reject("right_camera_info", "no CameraInfo yet on "
                            f"{self.params.value('right_camera_info_topic')}; waiting for it before using pairs")
            self._parked_pairs.append(pair)
            return
        if self._right_info_problem:
            return self.reject("right_camera_info", self._right_info_problem)
        baseline = baseline_from_camera_info(self.right_info)
        if baseline is None:
            return self.reject("right_camera_info", "no usable right CameraInfo on "
                               f"{self.params.value('right_camera_info_topic')} (need P[0,3] = -fx * baseline < 0)")
        cal = self.right_calibration
        if (right.shape[1], right.shape[0]) != (cal.width, cal.height):
            return self.reject("stereo_size", f"right image is {right.shape[1]}x{right.shape[0]} but its CameraInfo "
                               f"says {cal.width}x{cal.height}: publish the CameraInfo of the right image stream")
        frame.right = self._rectified(to_gray(right, right_enc), cal, self.params.value("right_image_topic"))[0]
        frame.baseline = baseline
        self._submit(frame)

    def _submit(self, frame: Frame) -> None:
        if not self.worker.submit(frame):
            self.accounts.rejected("shutdown")

    # -- health -------------------------------------------------------------------------------
    def reject(self, reason: str, why: str) -> None:
        """Count the frame as rejected under `reason` and report `why`."""
        self.accounts.rejected(reason)
        self._unreported = True
        self.problem(reason, why)

    def problem(self, reason: str, why: str | None = None) -> None:
        """Report a problem: logged at most every LOG_EVERY_S per reason, WARN on /diagnostics."""
        if why is None:               # problem(message): one general reason
            reason, why = "general", reason
        now = time.monotonic()
        self._problems[reason] = (why, now)
        if now - self._logged.get(reason, -1e9) >= LOG_EVERY_S:
            self._logged[reason] = now
            self.get_logger().warning(why)

    @property
    def last_problem(self) -> str:
        return max(self._problems.values(), key=lambda m: m[1])[0] if self._problems else ""

    def _process_safely(self, frame: Frame) -> None:
        t0 = time.perf_counter()
        try:
            with self.model_lock:
                self.process(frame)
        except FrameRejected as exc:
            return self.reject(exc.reason, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bad frame must not kill the worker thread
            if not self.context.ok():     # Ctrl-C while a frame was in flight: nothing to publish to, not the frame's fault
                return None
            return self.reject("processing_failed", f"processing failed: {exc.__class__.__name__}: {exc}")
        done = time.perf_counter()
        self.last_total_ms, self.last_process_ms = (done - frame.received) * 1e3, (done - t0) * 1e3
        self.accounts.published()
        self._publish_status(frame.header)

    def process(self, frame: Frame) -> None:
        raise NotImplementedError

    def scale_info(self) -> tuple[str, float]:
        """(where the scale comes from, the factor applied)."""
        return (METRIC_MODEL if self.model.meta.metric_scale else RELATIVE), 1.0

    def _publish_status(self, header=None) -> None:
        self._unreported = False
        try:
            self._publish_status_unguarded(header)
        except Exception as exc:  # noqa: BLE001 - a status problem must not stall the worker or the timer
            self.problem("status_failed", f"vode/status not published: {exc.__class__.__name__}: {exc}")

    def _publish_status_unguarded(self, header) -> None:
        model = self.model
        source, scale = self.scale_info()
        snap = self.accounts.snapshot()
        msg = VodeStatus(
            node=self.role, model=str(model.path), method=model.meta.method,
            provider=model.provider, scale_source=source, scale=float(scale), frames_in=snap.frames_in,
            frames_out=snap.frames_out, frames_dropped=snap.frames_dropped,
            frames_rejected=snap.frames_rejected, inference_ms=float(model.last_ms),
            total_ms=float(self.last_total_ms), process_ms=float(self.last_process_ms))
        if header is not None:
            msg.header = header
        else:
            msg.header.stamp = self.get_clock().now().to_msg()
        self.fill_status(msg)
        self.status_pub.publish(msg)

    def fill_status(self, msg: VodeStatus) -> None:
        """Subclasses set their own fields of vode/status."""

    def diagnostic_values(self) -> list[tuple[str, Any]]:
        """Subclasses add (key, value) pairs to their /diagnostics status."""
        return []

    def _tick(self) -> None:
        # vode/status also goes out when frames came in but none went out (only bad input).
        if self._unreported:
            self._publish_status()
        self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        recent = {r: m for r, (m, t) in self._problems.items() if now - t < RECENT_S}
        level = WARN if recent else OK
        message = self.last_problem if recent else "running"
        snap = self.accounts.snapshot()
        if self.lifecycle_state == "inactive":
            message = "inactive (lifecycle): not subscribed to the camera; activate to start"
        elif self.camera_info is None and snap.frames_in == 0 and not recent:
            level, message = WARN, "waiting for images and CameraInfo"
        status = DiagnosticStatus(level=level, name=f"vode_ros: {self.get_name()}", message=message,
                                  hardware_id=self.params.value("image_topic"))
        model = self.model
        source, scale = self.scale_info()
        values = [("lifecycle_state", self.lifecycle_state), ("model", model.path), ("provider", model.provider),
                  ("mode", self.mode),
                  ("scale_source", source), ("scale", f"{scale:.4f}"), ("frames_in", snap.frames_in),
                  ("frames_out", snap.frames_out), ("frames_dropped", snap.frames_dropped),
                  ("frames_rejected", snap.frames_rejected), ("frames_pending", snap.frames_pending),
                  ("stereo_unpaired", self.pairer.unpaired),
                  *((f"rectify {topic}", how) for topic, how in sorted(dict(self.rectifying).items())),
                  ("inference_ms", f"{model.last_ms:.1f}"),
                  ("process_ms", f"{self.last_process_ms:.1f}")]
        values += self.diagnostic_values()
        values += [(f"rejected_{reason}", n) for reason, n in sorted(snap.rejected.items())]
        values += [(f"problem_{reason}", m) for reason, m in sorted(recent.items())]
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values]
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        # Also runs for a node whose __init__ failed half-way, and again from rclpy's shutdown.
        self._stop_work()
        super().destroy_node()
        # rclpy's LifecycleNode leaves its state machine alive, and with it the node handle, the
        # lifecycle services and ~/transition_event on the graph: a node made later under the
        # same name then shares rosout with a ghost, and discovery slows as ghosts pile up.
        self._state_machine.destroy_when_not_in_use()
