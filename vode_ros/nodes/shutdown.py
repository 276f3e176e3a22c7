"""Start-up errors and signals of a node process.

A node stops quietly on SIGINT / SIGTERM with exit status 0, however many signals arrive (a
terminal's Ctrl-C and `ros2 launch` both send SIGINT). rclpy's own handler wakes the executor
and shuts the context down; it then chains to the Python handler that was installed before
``rclpy.init``. Python's default for SIGINT raises KeyboardInterrupt wherever the main thread
happens to be (in a thread join during teardown, in destroy_publisher), which prints a
traceback: :func:`quiet_signals` installs a handler that only records the signal instead.

:func:`run_single` is the entry point of one node in its own process (the console scripts);
:func:`spin_until_shutdown` the spin-and-tear-down that it and `vode run` share.
"""
from __future__ import annotations

import signal

received: list[int] = []


def _record(signum, _frame) -> None:
    received.append(signum)


def quiet_signals() -> None:
    """Call before rclpy.init: SIGINT and SIGTERM then only shut rclpy down (no KeyboardInterrupt)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _record)


def ignore_further_signals() -> None:
    """Once shutting down: further SIGINT / SIGTERM are ignored. (Python resets its own handlers
    to the default at interpreter exit, so a late second Ctrl-C would otherwise kill the process
    with status -2; an ignored signal stays ignored.)"""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def startup_errors() -> tuple[type[BaseException], ...]:
    """What a node's constructor raises for bad files or parameters (reported in one line, exit 1)."""
    from rclpy.exceptions import ParameterException

    from vode_ros.runtime.inference import ModelLoadError

    return (ModelLoadError, ValueError, ParameterException, OSError)


def spin_until_shutdown(executor, nodes) -> None:
    """Spin until SIGINT / SIGTERM or rclpy shutdown, then tear the nodes down quietly."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:                   # noqa: BLE001 - a signal can shut the context down while the
        if rclpy.ok():                  # executor builds its wait set (RCLError): that is a stop too
            raise
    finally:
        ignore_further_signals()
        executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()


def run_single(node_cls, args=None) -> int:
    """Entry point of one node in its own process: start-up errors exit 1 with one line;
    SIGINT / SIGTERM (however many) stop it quietly with exit 0."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    quiet_signals()           # before rclpy.init, so rclpy's handler chains to it
    rclpy.init(args=args)
    try:
        node = node_cls()
    except startup_errors() as exc:
        rclpy.logging.get_logger(node_cls.__name__).fatal(str(exc))
        rclpy.try_shutdown()
        return 1
    # Several threads: a reliable input blocked by back-pressure must not stop timers and services.
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    spin_until_shutdown(executor, [node])
    return 0
