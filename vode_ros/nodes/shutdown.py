"""Start-up errors and signals of a node process.

A node stops quietly on SIGINT / SIGTERM with exit status 0, however many signals arrive (a
terminal's Ctrl-C and `ros2 launch` both send SIGINT). rclpy's own handler wakes the executor
and shuts the context down; it then chains to the Python handler that was installed before
``rclpy.init``. Python's default for SIGINT raises KeyboardInterrupt wherever the main thread
happens to be (in a thread join during teardown, in destroy_publisher), which prints a
traceback: :func:`quiet_signals` installs a handler that only records the signal instead.
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
