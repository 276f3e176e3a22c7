"""What the depth and odometry nodes share: lifecycle, parameters, model, health; the camera input is
nodes/camera_input.py.

A node here is a thin adapter: it decodes messages, hands numpy to vode_ros.runtime.inference /
vode_ros.runtime.odometry / vode_ros.runtime.scale and turns results back into messages. Bad input is
logged (throttled per problem), counted per reason, reported on /diagnostics and vode/status,
and never stops the node. Every input frame ends in exactly one of: out, dropped (queue
policy), rejected (with a reason); until then it is pending (runtime.accounting).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.client import Client
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.service import Service
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from std_srvs.srv import Trigger

from vode_ros.core.rectify import RECTIFY_MODES
from vode_ros.nodes.camera_input import CameraInput, Frame
from vode_ros.nodes.params import ParameterTable, ParamSpec
from vode_ros.runtime.accounting import FrameAccounts
from vode_ros.runtime.inference import (SHIPPED_MODELS, ModelLoadError, OnnxModel, default_model_dir,
                                     provider_problem, shipped_model_for)
from vode_ros.runtime.latest_worker import LatestFrameWorker
from vode_ros.runtime.scale import METRIC_MODEL, RELATIVE
from vode_ros_msgs.msg import VodeStatus

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
LOG_EVERY_S = 5.0         # one log line per problem (reason) and interval
RECENT_S = 10.0           # a problem keeps /diagnostics at WARN this long after it last happened


class FrameRejected(Exception):
    """Raised by a node's process() for a frame it cannot use; counted under `reason`."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def topic_name_problem(name: str) -> str | None:
    """Why `name` is not a usable ROS 2 topic name (rcl's own rules), in one line, or None."""
    from rclpy.expand_topic_name import expand_topic_name
    from rclpy.validate_full_topic_name import validate_full_topic_name
    from rclpy.validate_topic_name import validate_topic_name

    if not name.strip():
        return "give a topic name"
    try:
        validate_topic_name(name)
        # Relative and ~ names are checked as the node would expand them ('/a//b' passes the first check).
        validate_full_topic_name(expand_topic_name(name, "vode_node", "/"))
    except Exception as exc:  # noqa: BLE001 - InvalidTopicNameException, or rcl's ValueError from expansion
        why = str(exc).splitlines()[0].rstrip(":").replace("Invalid topic name: ", "")
        why = why.split(", at /")[0]        # rcl appends its C source location
        return (f"{name!r} is not a valid ROS 2 topic name ({why}); use letters, digits, '_' and '/' "
                "separators, e.g. /camera/left/image_raw")
    return None


_topic_problem = topic_name_problem


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
        self.activate_error: BaseException | None = None
        self._unconfigured_entities: list | None = None   # what the node had before configure
        self.inputs: CameraInput | None = None             # made at configure
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
            # A subscription that cannot be made (rclpy refuses it) leaves the node in ErrorProcessing
            # and back to unconfigured, without a word: raise instead of spinning a node that never takes images.
            if self.trigger_activate() != TransitionCallbackReturn.SUCCESS or self.lifecycle_state != "active":
                error = self.activate_error
                self.destroy_node()
                raise error or RuntimeError(f"{name}: activate failed (see the log above)")

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
            if self.context.ok():         # else Ctrl-C shut rclpy down under it: the stop, not a fault
                self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.configure_error = None
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.inputs.subscribe(self.stereo)
        except Exception as exc:  # noqa: BLE001 - reported; the node stays inactive, unsubscribed
            self.activate_error = ValueError(f"cannot subscribe to the camera: {exc}")
            self._unsubscribe_inputs()
            self.get_logger().error(str(self.activate_error))
            return TransitionCallbackReturn.FAILURE
        self.activate_error = None
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
        if self.inputs is not None:
            self.inputs.unsubscribe()

    def stop_input(self) -> None:
        """At process shutdown, before the executor stops: callbacks waiting for a stereo partner or for room
        in the worker's queue (reliable input) return, and frames still queued count as rejected (shutdown)."""
        if self.inputs is not None:
            self.inputs.close()
        worker = getattr(self, "worker", None)
        if worker is not None:
            for _ in worker.stop():
                self.accounts.rejected("shutdown")

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
        self._declare("model_dir", "", "folder with depth.onnx and pose.onnx ('' = a shipped model, see model); "
                      "a change reloads the model")
        self._declare("model", "", "shipped model where model_dir is '': driving (KITTI cameras) | indoor "
                      "(hand-held, RGB-D, drones) | '' = by the domain parameter (indoor -> indoor, else driving); "
                      "a change reloads the model", choices=("", *SHIPPED_MODELS))
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
        self.inputs = CameraInput(self)
        self._unreported = False       # a frame was rejected after the last vode/status
        self.last_total_ms = 0.0
        self.last_process_ms = 0.0
        self.params.on_change(["stereo_slop"], lambda v: setattr(self.inputs.pairer, "slop", float(v["stereo_slop"])))
        self.params.on_change(["model_dir", "model", "providers", "threads"], self._reload_with)
        self.params.on_change(["domain"], self._follow_domain)
        self.status_pub = self.create_publisher(VodeStatus, "vode/status", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        reliable = bool(p("reliable_input"))
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
        v = {n: self.params.value(n) for n in ("model_dir", "model", "providers", "threads")}
        v.update(values or {})
        model_dir = Path(v["model_dir"]) if v["model_dir"] else self.shipped_model_dir(v)
        model = OnnxModel(model_dir / f"{self.role}.onnx", list(v["providers"]), int(v["threads"]),
                          expected_kind=self.role)
        self.get_logger().info(f"{model.path} ({model.meta.method}, {model.meta.width}x{model.meta.height} "
                               f"{model.meta.color}) runs on {model.provider}")
        return model

    def shipped_model_dir(self, values: dict[str, Any] | None = None) -> Path:
        """The shipped model's folder for ``model`` and, where that is '', the camera's ``domain``."""
        v = values or {}
        model = v.get("model", self.params.value("model"))
        domain = v.get("domain", self.params.value("domain") if self.has_parameter("domain") else "")
        return default_model_dir(shipped_model_for(str(model), str(domain)))

    def _follow_domain(self, values: dict[str, Any]) -> None:
        """A new domain picks another shipped model where neither model_dir nor model names one."""
        if self.params.value("model_dir") or self.params.value("model") or self.model is None:
            return
        if self.shipped_model_dir(values) != self.model.path.parent:
            self._reload_with({**values, "model_dir": ""})

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

    # -- frames ----------------------------------------------------------------------------------
    def submit(self, frame: Frame) -> None:
        """Hand a frame to the worker (nodes.camera_input calls this for every usable frame)."""
        if not self.worker.submit(frame):
            self.accounts.rejected("shutdown")

    # -- health -------------------------------------------------------------------------------
    def reject(self, reason: str, why: str) -> None:
        """Count the frame as rejected under `reason` and report `why`."""
        self.accounts.rejected(reason)
        self._unreported = True
        self.problem(reason, why)

    def problem(self, reason: str, why: str | None = None, log: bool = True) -> None:
        """Report a problem: logged at most every LOG_EVERY_S per reason (log=False: not logged, the caller
        said it once), WARN on /diagnostics."""
        if why is None:               # problem(message): one general reason
            reason, why = "general", reason
        now = time.monotonic()
        self._problems[reason] = (why, now)
        if log and now - self._logged.get(reason, -1e9) >= LOG_EVERY_S:
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
        if self.inputs is not None:
            self.inputs.check_arrival()
            if self.stereo:
                self.inputs.expire_unpaired()
        self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        recent = {r: m for r, (m, t) in self._problems.items() if now - t < RECENT_S}
        level = WARN if recent else OK
        message = self.last_problem if recent else "running"
        snap = self.accounts.snapshot()
        if self.lifecycle_state == "inactive":
            message = "inactive (lifecycle): not subscribed to the camera; activate to start"
        elif self.inputs.camera_info is None and snap.frames_in == 0 and not recent:
            level, message = WARN, f"waiting for images on {self.params.value('image_topic')} and CameraInfo"
        status = DiagnosticStatus(level=level, name=f"vode_ros: {self.get_name()}", message=message,
                                  hardware_id=self.params.value("image_topic"))
        model = self.model
        source, scale = self.scale_info()
        values = [("lifecycle_state", self.lifecycle_state), ("model", model.path), ("provider", model.provider),
                  ("mode", self.mode),
                  ("scale_source", source), ("scale", f"{scale:.4f}"), ("frames_in", snap.frames_in),
                  ("frames_out", snap.frames_out), ("frames_dropped", snap.frames_dropped),
                  ("frames_rejected", snap.frames_rejected), ("frames_pending", snap.frames_pending),
                  ("stereo_unpaired", self.inputs.pairer.unpaired),
                  *((f"rectify {topic}", how) for topic, how in sorted(dict(self.inputs.rectifying).items())),
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
