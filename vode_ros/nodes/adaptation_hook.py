"""Online-adaptation wiring of the depth node: parameters, the ~/save_adapted service, the swap
of accepted weights, the odometry node's reload and the adaptation's /diagnostics status.

The adapter itself (vode_ros.tools.adaptation, torch) is imported only when ``adapt`` is true,
so the depth node stays torch-free without it. After each accepted swap the hook builds the new
ONNX Runtime session in the adapter's thread and swaps the node's model reference under its
model_lock; inference never waits on training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from vode_ros.nodes.base import ERROR, OK, WARN
from vode_ros.runtime.inference import OnnxModel


def default_save_dir(namespace: str) -> Path:
    """~/.ros/vode_ros/adapted for the root namespace, ~/.ros/vode_ros/adapted/<ns> below it."""
    base = Path.home() / ".ros" / "vode_ros" / "adapted"
    ns = namespace.strip("/")
    return base / ns if ns else base


class AdaptationHook:
    """With ``adapt`` on, runs an OnlineAdapter on ``node`` (a configured VodeNodeBase) fed by
    :meth:`add_frame`; :meth:`declare` declares its ``adapt_*`` parameters."""

    def __init__(self, node):
        self.node = node
        self.adapter = None
        self._odom_set = self._odom_reload = None    # the odometry node's services, with adapt on
        self._odom_warned = False
        node.create_service(Trigger, "~/save_adapted", self._on_save_adapted)
        if node.get_parameter("adapt").value:
            self._start()

    def add_frame(self, net_in: np.ndarray, k_net: np.ndarray, stamp: float, right: np.ndarray | None,
                  baseline: float | None) -> None:
        """A buffer append, never a wait on training (call after publishing)."""
        if self.adapter is not None:
            self.adapter.add_frame(net_in, k_net, stamp, right, baseline)

    def stop(self) -> None:
        if self.adapter is not None:
            self.adapter.stop()

    @staticmethod
    def declare(node) -> None:
        """The adapt_* parameters (at the node's construction). The adapter reads its settings once
        when it starts: changing them means a restart (refused live, with that reason)."""
        def declare(*args, **kwargs):
            return node._declare(*args, live=False, **kwargs)

        rng_i = lambda lo, hi: {"integer_range": [IntegerRange(from_value=lo, to_value=hi, step=1)]}  # noqa: E731
        rng_f = lambda lo, hi: {"floating_point_range": [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]}  # noqa: E731
        declare("adapt", False, "fine-tune the model online on the incoming frames (needs torch)")
        declare("adapt_checkpoint", "", "torch checkpoint of the model in use ('' = <model_dir>/checkpoint.pt "
                "if there, else the shipped models/sfmlearner_driving.pt)")
        declare("adapt_save_dir", "", "~/save_adapted writes here; accepted swaps go to <dir>/live "
                "('' = ~/.ros/vode_ros/adapted/<namespace>, so two cameras never share it)")
        declare("adapt_buffer_size", 64, "replay buffer, frames", **rng_i(4, 4096))
        declare("adapt_holdout_every", 5, "every n-th frame is held out (judges, never trained on)", **rng_i(2, 1000))
        declare("adapt_holdout_size", 8, "held-out snippets kept", **rng_i(1, 1024))
        declare("adapt_batch_size", 2, "snippets per gradient step", **rng_i(1, 64))
        declare("adapt_lr", 5e-5, "Adam learning rate", **rng_f(1e-8, 1.0))
        declare("adapt_max_steps_per_second", 1.0, "upper bound of gradient steps per second", **rng_f(0.001, 1000.0))
        declare("adapt_threads", 1, "torch threads of the adaptation", **rng_i(1, 64))
        declare("adapt_check_every", 10, "steps between held-out checks (accept + swap, or roll back)",
                **rng_i(1, 100000))
        declare("adapt_nice", 10, "niceness added to the adaptation thread (inference keeps priority)",
                **rng_i(0, 19))
        declare("adapt_odometry_node", "odometry_node", "odometry node to reload after a swap ('' = none)")

    def _checkpoint(self) -> Path:
        p = self.node.get_parameter
        if p("adapt_checkpoint").value:
            return Path(p("adapt_checkpoint").value).expanduser()
        model_dir = p("model_dir").value
        if model_dir and (Path(model_dir) / "checkpoint.pt").is_file():
            return Path(model_dir) / "checkpoint.pt"     # a folder written by ~/save_adapted
        shipped = self.node.shipped_model_dir()
        return next(iter(sorted(shipped.glob("sfmlearner_*.pt"))), shipped / "sfmlearner_driving.pt")

    def _start(self) -> None:
        from vode_ros.tools.adaptation import AdaptationError, AdaptSettings, OnlineAdapter

        p = self.node.get_parameter
        ckpt = self._checkpoint()
        if not ckpt.is_file():
            raise ValueError(f"adapt: torch checkpoint {ckpt} not found; set adapt_checkpoint (a nets-only "
                             "checkpoint of the model in model_dir)")
        settings = AdaptSettings(
            checkpoint=str(ckpt), save_dir=p("adapt_save_dir").value or str(default_save_dir(self.node.get_namespace())),
            buffer_size=int(p("adapt_buffer_size").value), holdout_every=int(p("adapt_holdout_every").value),
            holdout_size=int(p("adapt_holdout_size").value), batch_size=int(p("adapt_batch_size").value),
            lr=float(p("adapt_lr").value), max_steps_per_second=float(p("adapt_max_steps_per_second").value),
            threads=int(p("adapt_threads").value), check_every=int(p("adapt_check_every").value),
            nice=int(p("adapt_nice").value), stereo=self.node.mode == "stereo")
        try:
            self.adapter = OnlineAdapter(settings, self.node.model.meta, on_accept=self._swap_in,
                                         logger=self.node.get_logger())
        except (AdaptationError, ValueError) as exc:
            raise ValueError(f"adapt: {exc}") from exc
        name = p("adapt_odometry_node").value
        self._odom_set = self.node.create_client(SetParameters, f"{name}/set_parameters") if name else None
        self._odom_reload = self.node.create_client(Trigger, f"{name}/reload_model") if name else None
        self._odom_warned = False
        self.node.create_timer(1.0, self._publish_diagnostics)
        self.adapter.start()
        self.node.get_logger().info(f"online adaptation on: {ckpt}, {settings.max_steps_per_second} steps/s max, "
                                    f"{settings.threads} torch thread(s), stereo {self.adapter.use_stereo}, "
                                    f"saves to {settings.save_dir}")

    def _swap_in(self, live_dir: Path) -> None:
        """Adapter thread: build the new session here, swap the reference under model_lock."""
        p = self.node.get_parameter
        new = OnnxModel(live_dir / "depth.onnx", list(p("providers").value), int(p("threads").value),
                        expected_kind="depth")
        with self.node.model_lock:
            self.node.model = new
            self.node.on_model_swapped()
        self._sync_odometry(live_dir)

    def _sync_odometry(self, live_dir: Path) -> None:
        """Point the odometry node at live_dir and ask it to reload (asynchronous, never blocks)."""
        if self._odom_reload is None or not (live_dir / "pose.onnx").is_file():
            return
        if not (self._odom_set.service_is_ready() and self._odom_reload.service_is_ready()):
            if not self._odom_warned:
                self._odom_warned = True
                self.node.get_logger().info(f"adaptation: no {self.node.get_parameter('adapt_odometry_node').value} "
                                       "services; its pose net is not updated")
            return
        req = SetParameters.Request(parameters=[Parameter("model_dir", value=str(live_dir)).to_parameter_msg()])

        def reload(future):
            try:
                res = future.result()
                if res is None or not all(r.successful for r in res.results):
                    self.node.problem(f"adaptation: could not set model_dir on the odometry node: {res}")
                    return
                self._odom_reload.call_async(Trigger.Request()).add_done_callback(reloaded)
            except Exception as exc:   # node shutting down
                self.node.get_logger().debug(f"adaptation: odometry reload skipped: {exc}")

        def reloaded(future):
            try:
                res = future.result()
            except Exception as exc:
                res = None
                self.node.get_logger().debug(f"adaptation: odometry reload: {exc}")
            if res is not None and not res.success:
                self.node.problem(f"adaptation: odometry node reload failed: {res.message}")

        self._odom_set.call_async(req).add_done_callback(reload)

    def _on_save_adapted(self, request, response):
        if self.adapter is None:
            response.success, response.message = False, "adapt is off (start the node with adapt:=true)"
            return response
        try:
            written = self.adapter.save()
        except Exception as exc:
            response.success, response.message = False, f"save failed: {exc.__class__.__name__}: {exc}"
            self.node.problem(response.message)
            return response
        out = Path(next(iter(written.values()))).parent
        s = self.adapter.stats
        response.success = True
        response.message = (f"saved version {s.version} ({s.steps} steps, {s.swaps} swaps, {s.rollbacks} rollbacks) "
                            f"to {out}: {', '.join(sorted(written))}; load with model_dir:={out}")
        return response

    def _publish_diagnostics(self) -> None:
        a = self.adapter
        s = a.stats
        if s.failed:
            level, message = ERROR, f"adaptation {s.failed}"
        elif s.last_check == "rolled back":
            level, message = WARN, (f"rolled back: {s.last_reason or 'held-out loss did not fall'} "
                                    f"({s.rollbacks} rollbacks, {s.swaps} swaps)")
        else:
            level, message = OK, f"{s.state}: {s.steps} steps, {s.swaps} swaps, {s.rollbacks} rollbacks"
        status = DiagnosticStatus(level=level, name=f"vode_ros: {self.node.get_name()} adaptation", message=message,
                                  hardware_id=self.node.get_parameter("image_topic").value,
                                  values=[KeyValue(key=k, value=v) for k, v in a.diagnostics()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.node.get_clock().now().to_msg()
        self.node.diag_pub.publish(arr)
