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


def stopped_while_starting() -> bool:
    """True (and rclpy shut down) when SIGINT / SIGTERM came while the nodes were being made: rclpy has
    shut its context down under the constructor, whose error is then the stop, not a fault to report."""
    import rclpy

    if not received and rclpy.ok():
        return False
    ignore_further_signals()
    rclpy.try_shutdown()
    return True


def spin_until_shutdown(executor, nodes) -> None:
    """Spin until SIGINT / SIGTERM or rclpy shutdown, then tear the nodes down quietly."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    try:
        # A signal while the nodes were starting (loading models) reached only quiet_signals' record:
        # rclpy wakes the executors that exist when it comes, and this one did not yet.
        if not received:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:                   # noqa: BLE001 - a signal can shut the context down while the
        if rclpy.ok():                  # executor builds its wait set (RCLError): that is a stop too
            raise
    finally:
        ignore_further_signals()
        for node in nodes:              # a callback blocked by back-pressure (reliable input) returns now
            stop = getattr(node, "stop_input", None)
            if stop is not None:
                stop()
        shutdown_executor(executor)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()


def shutdown_executor(executor) -> None:
    """executor.shutdown() without rclpy's "exception was never retrieved" noise (see _drain_handlers)."""
    _drain_handlers(executor)
    executor.shutdown()
    _retrieve_handler_errors(executor)


def _drain_handlers(executor) -> None:
    """Let the callbacks already handed to a MultiThreadedExecutor's threads finish before the executor
    shuts down. rclpy's shutdown destroys the executor's guard condition first; a callback that ends
    after it signals the destroyed guard and fails with "cannot use Destroyable because destruction was
    requested", which rclpy prints at exit as "The following exception was never retrieved"."""
    pool = getattr(executor, "_executor", None)          # rclpy's ThreadPoolExecutor (not public API)
    if pool is not None and hasattr(pool, "shutdown"):
        pool.shutdown(wait=True)


def _retrieve_handler_errors(executor) -> None:
    """Mark the errors of callbacks that ended during shutdown as seen (each was a callback cut short by
    the stop, not a fault), so rclpy does not print them at exit."""
    for task in list(getattr(executor, "_futures", None) or []):
        if hasattr(task, "done") and task.done() and hasattr(task, "exception"):
            task.exception()


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
        if stopped_while_starting():
            return 0
        rclpy.logging.get_logger(node_cls.__name__).fatal(str(exc))
        rclpy.try_shutdown()
        return 1
    except Exception:
        if stopped_while_starting():
            return 0
        raise
    # Several threads: a reliable input blocked by back-pressure must not stop timers and services.
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    spin_until_shutdown(executor, [node])
    return 0
