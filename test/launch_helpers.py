"""How a real `ros2 launch` of the package is judged to have stopped on SIGINT."""
from __future__ import annotations

import re
import signal

NODES = ("depth_node", "odometry_node")


def launch_stop_problem(code: int, log_text: str, nodes: tuple[str, ...] = NODES) -> str | None:
    """None when SIGINT stopped the launch cleanly, else what went wrong (with the log's end).

    Each node must log "process has finished cleanly". launch itself must exit 0, with one
    exception: once in a while (seen in a full CI run, never when a test runs alone) launch hangs
    after every process it started has finished cleanly, a known launch_ros bug
    (ros2/launch_ros#199), and launch_runner.stop() ends it with SIGTERM: accepted only when the
    log's last line is such a clean finish."""
    tail = log_text[-3000:]
    for name in nodes:
        if not re.search(rf"\[{name}-\d+\]: process has finished cleanly", log_text):
            return f"{name} did not finish cleanly on SIGINT:\n{tail}"
    if code == 0:
        return None
    lines = [line for line in log_text.splitlines() if line.strip()]
    if code == -signal.SIGTERM and lines and "process has finished cleanly [pid" in lines[-1]:
        return None
    return f"ros2 launch did not stop cleanly on SIGINT (status {code}):\n{tail}"
