"""`vode bag record` while the publishers start one after the other (black box: the recorder and the
publishers are separate processes over DDS).

Each test's docstring is a row of docs/reliability.md (scripts/reliability_table.py).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from vode_ros.bag.reader import bag_info

pytestmark = [pytest.mark.ros, pytest.mark.slow]

# A node that starts like the vode nodes do: one output first, the next a while later; each publishes
# once its reader is there (as the nodes do once frames flow), numbered, and says how many it sent.
PUBLISHER = textwrap.dedent("""
    import sys, time
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    rclpy.init()
    node = rclpy.create_node("late_publishers")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    sent = {}
    def run(topic, n):
        pub = node.create_publisher(String, topic, qos)
        end = time.monotonic() + 10.0
        while pub.get_subscription_count() < 1 and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(0.3)          # the reader's side of the match
        for i in range(n):
            pub.publish(String(data=f"{topic} {i}"))
            time.sleep(0.05)
        sent[topic] = n
    run("/vode_test/first", 40)
    run("/vode_test/later", 20)
    time.sleep(1.0)              # reliable samples acknowledged before the process goes
    print(sent, flush=True)
""")


def test_recording_starts_at_once_and_takes_each_topic_from_its_first_publisher(tmp_path):
    """`vode bag record OUT --topics A B` while A's publisher starts first and B's later | recording starts at
    once and each topic is subscribed when its first publisher appears (type and QoS from it): nothing published
    to a topic after its reader matched is missed (before: nothing was recorded until every topic had a
    publisher, and the first outputs of the nodes were lost)
    """
    out = tmp_path / "rec"
    recorder = subprocess.Popen([sys.executable, "-m", "vode_ros.cli.main", "bag", "record", str(out), "--topics",
                                 "/vode_test/first", "/vode_test/later", "--discovery-timeout", "30"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        ready = recorder.stdout.readline()
        assert ready.startswith("recording "), ready
        pub = subprocess.run([sys.executable, "-c", PUBLISHER], capture_output=True, text=True, timeout=60)
        assert pub.returncode == 0, pub.stderr
        assert "'/vode_test/first': 40" in pub.stdout and "'/vode_test/later': 20" in pub.stdout, pub.stdout
    finally:
        os.killpg(recorder.pid, signal.SIGINT)
        _, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, err
    counts = {t: v["count"] for t, v in bag_info(out)["topics"].items()}
    assert counts == {"/vode_test/first": 40, "/vode_test/later": 20}, counts


def test_a_topic_that_never_gets_a_publisher_is_said_and_the_others_recorded(tmp_path):
    """`vode bag record` with one topic that never gets a publisher | after --discovery-timeout one line names
    it; the other topics are recorded all along, and the summary says which topic never had a publisher
    """
    out = tmp_path / "rec"
    recorder = subprocess.Popen([sys.executable, "-m", "vode_ros.cli.main", "bag", "record", str(out), "--topics",
                                 "/vode_test/first", "/vode_test/nobody", "--discovery-timeout", "4"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert recorder.stdout.readline().startswith("recording ")
        t0 = time.monotonic()
        script = PUBLISHER.replace('run("/vode_test/later", 20)', "")
        pub = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert pub.returncode == 0, pub.stderr
        time.sleep(max(0.5, t0 + 5.0 - time.monotonic()))
    finally:
        os.killpg(recorder.pid, signal.SIGINT)
        stdout, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, err
    assert "no publisher of /vode_test/nobody after 4 s" in err and "Traceback" not in err, err
    assert "no publisher ever seen on /vode_test/nobody" in stdout
    assert {t: v["count"] for t, v in bag_info(out)["topics"].items()}.get("/vode_test/first") == 40
