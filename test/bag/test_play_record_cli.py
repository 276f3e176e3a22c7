"""`vode bag play` / `vode bag record` (real DDS, real processes, the KITTI clip's first frames).

Bad input ends with one line naming the problem and exit status 2, never a traceback; a
reliable replay that waits for its reader is recorded without loss; Ctrl-C stops both cleanly.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vode_ros.bag import topics as T
from vode_ros.bag.kitti_to_bag import convert
from vode_ros.bag.reader import bag_info
from vode_ros.cli import main as vode_cli

N_FRAMES = 5


@pytest.fixture(scope="module")
def small_bag(kitti_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bags") / "clip"
    convert(kitti_dir, out, progress=False, max_frames=N_FRAMES)
    return out


def _vode(*args: str, **kwargs) -> subprocess.Popen:
    # A new process group, so the test's SIGINT reaches only the command under test.
    return subprocess.Popen([sys.executable, "-m", "vode_ros.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


def _wait_output(proc: subprocess.Popen, timeout: float = 60.0) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"`vode {' '.join(proc.args[3:])}` did not finish in {timeout} s:\n{out}\n{err}")


def _truncated_copy(bag: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in bag.iterdir():
        data = f.read_bytes()
        (dst / f.name).write_bytes(data[: len(data) // 2] if f.suffix == ".mcap" else data)
    return dst


@pytest.mark.parametrize("case", ["missing", "truncated", "unknown_topic", "negative_rate", "wait_for_unplayed"])
def test_play_refuses_bad_input_with_one_line(case, small_bag, tmp_path, capsys):
    bag = {"missing": tmp_path / "nope", "truncated": None}.get(case, small_bag)
    if case == "truncated":
        bag = _truncated_copy(small_bag, tmp_path / "cut")
    argv = ["bag", "play", str(bag)] + {
        "unknown_topic": ["--topics", "/no/such/topic"],
        "negative_rate": ["--rate", "-2"],
        "wait_for_unplayed": ["--topics", T.LEFT_IMAGE, "--wait-for", T.RIGHT_IMAGE],
    }.get(case, [])
    assert vode_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("vode bag: error: ") and "Traceback" not in err
    expected = {"missing": "no such bag", "truncated": "damaged, truncated", "unknown_topic": "/no/such/topic",
                "negative_rate": "--rate", "wait_for_unplayed": "not played"}[case]
    assert expected in err, err


def test_record_refuses_existing_output_and_unknown_topics(small_bag, tmp_path, capsys):
    assert vode_cli.main(["bag", "record", str(small_bag), "--topics", T.LEFT_IMAGE]) == 2
    assert "exists already" in capsys.readouterr().err
    code = vode_cli.main(["bag", "record", str(tmp_path / "out"), "--topics", "/nobody/publishes/this",
                          "--discovery-timeout", "0.5", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "no publisher of /nobody/publishes/this" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_play_without_subscriber_times_out_with_advice(small_bag):
    # --wait-for without topics waits for the image topics (not ground truth, CameraInfo, TF).
    proc = _vode("bag", "play", str(small_bag), "--wait-for", "--wait-timeout", "1", "--quiet")
    _, err = _wait_output(proc)
    assert proc.returncode == 1 and "Traceback" not in err
    assert f"no subscriber on {T.LEFT_IMAGE}, {T.RIGHT_IMAGE} after 1 s" in err, err


def test_reliable_play_into_record_loses_nothing_and_ctrl_c_closes_the_bag(small_bag, tmp_path):
    out = tmp_path / "recorded"
    topics = [T.LEFT_IMAGE, T.LEFT_INFO, T.TF_STATIC]
    # The player waits for the recorder, so the recorder can start after it.
    player = _vode("bag", "play", str(small_bag), "--reliable", "--rate", "0", "--wait-for", T.LEFT_IMAGE,
                   "--topics", *topics)
    recorder = _vode("bag", "record", str(out), "--topics", *topics)
    p_out, p_err = _wait_output(player)
    assert player.returncode == 0, p_err
    assert f"played {2 * N_FRAMES + 1} messages" in p_out
    time.sleep(0.5)   # the last samples are acknowledged; give the recorder's writer a moment
    os.killpg(recorder.pid, signal.SIGINT)
    r_out, r_err = _wait_output(recorder, 30.0)
    assert recorder.returncode == 0, r_err
    counts = {t: v["count"] for t, v in bag_info(out)["topics"].items()}
    assert counts == {T.LEFT_IMAGE: N_FRAMES, T.LEFT_INFO: N_FRAMES, T.TF_STATIC: 1}, (counts, r_out)
    assert not list(tmp_path.glob(".*.partial")), "the temporary recording folder was left behind"


def test_loop_stops_on_ctrl_c(small_bag):
    proc = _vode("bag", "play", str(small_bag), "--loop", "--rate", "4", "--clock")
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline and "playing" not in line:
        line = proc.stdout.readline()
    assert "in a loop" in line, line
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = _wait_output(proc, 20.0)
    assert proc.returncode == 0, err
    assert "stopped by Ctrl-C after" in out and "Traceback" not in err


def test_damage_found_while_playing_is_a_bag_read_error(small_bag, monkeypatch):
    import rclpy
    from rclpy.context import Context

    from vode_ros.bag.play_record import BagPlayer
    from vode_ros.bag.reader import BagReadError

    ctx = Context()
    rclpy.init(context=ctx)
    player = BagPlayer(small_bag, topics=[T.TF_STATIC], rate=0, context=ctx)
    good = next(iter(player._messages()))

    def damaged():
        yield good
        raise ValueError("chunk CRC mismatch")   # what a storage reader reports for a damaged chunk

    monkeypatch.setattr(player, "_messages", damaged)
    try:
        with pytest.raises(BagReadError, match="cannot read past message 1: chunk CRC mismatch"):
            player.play()
        assert player.published == 1 and player.finished.is_set()
    finally:
        player.destroy_node()
        ctx.try_shutdown()


def test_reliable_replay_into_a_slow_keep_all_reader_loses_nothing(small_bag):
    """The reader QoS the nodes need for lossless replay: RELIABLE + KEEP_ALL, and a slow callback."""
    import threading

    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    ctx = Context()
    rclpy.init(context=ctx)
    node = Node("slow_reader", context=ctx)
    got: list[int] = []

    def slow(msg):
        time.sleep(0.3)   # far slower than the player at --rate 0
        got.append(msg.header.stamp.sec)

    node.create_subscription(Image, T.LEFT_IMAGE, slow,
                             QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE))
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        player = _vode("bag", "play", str(small_bag), "--reliable", "--rate", "0", "--wait-for", "--quiet",
                       "--topics", T.LEFT_IMAGE)
        _, err = _wait_output(player)
        assert player.returncode == 0, err
        deadline = time.monotonic() + 10
        while len(got) < N_FRAMES and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(got) == N_FRAMES, f"received {len(got)} of {N_FRAMES} images"
    finally:
        executor.shutdown()
        spin.join(5)
        node.destroy_node()
        ctx.try_shutdown()
