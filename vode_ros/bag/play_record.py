"""Play a rosbag2 into ROS 2 and record topics into one, with rclpy and rosbags (no rosbag2).

Messages travel as the CDR bytes stored in the bag (rclpy publishes and receives raw
serialized messages), so nothing is decoded on the way: what the nodes get is what
`ros2 bag play` would send.
"""
from __future__ import annotations

import importlib
import shutil
import threading
import time
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from vode_ros.bag.reader import open_bag


def ros_type(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class."""
    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def vode_typestore():
    """rosbags typestore for ROS 2 Kilted plus this package's own messages."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    msg_dir = Path(__file__).resolve().parents[2] / "msg"
    add = {}
    for f in sorted(msg_dir.glob("*.msg")):
        add.update(get_types_from_msg(f.read_text(), f"vode_ros_msgs/msg/{f.stem}"))
    store.register(add)
    return store


def _qos_for(topic: str) -> QoSProfile:
    if topic == "/tf_static":
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class BagPlayer(Node):
    """Publishes a bag's messages at their recorded pace times `rate` (0 = as fast as possible)."""

    def __init__(self, bag: str | Path, topics: list[str] | None = None, rate: float = 1.0,
                 publish_clock: bool = False, name: str = "vode_bag_player"):
        super().__init__(name)
        self.bag, self.rate, self.publish_clock = Path(bag), rate, publish_clock
        self.messages: list[tuple[str, int, bytes]] = []
        self.publishers_by_topic = {}
        with open_bag(self.bag) as reader:
            conns = [c for c in reader.connections if topics is None or c.topic in topics]
            for c in conns:
                if c.topic not in self.publishers_by_topic:
                    self.publishers_by_topic[c.topic] = self.create_publisher(ros_type(c.msgtype), c.topic,
                                                                              _qos_for(c.topic))
            for conn, log_ns, raw in reader.messages(connections=conns):
                self.messages.append((conn.topic, log_ns, bytes(raw)))
        if publish_clock:
            from rosgraph_msgs.msg import Clock

            self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.published = 0
        self.finished = threading.Event()

    def wait_for_subscribers(self, topics: list[str], timeout: float = 20.0) -> bool:
        """Block until every topic has a subscriber (DDS discovery takes a moment)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(self.publishers_by_topic[t].get_subscription_count() > 0 for t in topics):
                return True
            time.sleep(0.05)
        return False

    def play(self, on_message=None) -> None:
        """Blocking playback (call from a thread other than the executor's)."""
        if not self.messages:
            self.finished.set()
            return
        t0_bag = self.messages[0][1]
        t0_wall = time.monotonic()
        for topic, log_ns, raw in self.messages:
            if self.rate > 0:
                due = t0_wall + (log_ns - t0_bag) * 1e-9 / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if self.publish_clock:
                from rosgraph_msgs.msg import Clock

                clock = Clock()
                clock.clock.sec, clock.clock.nanosec = divmod(log_ns, 1_000_000_000)
                self.clock_pub.publish(clock)
            self.publishers_by_topic[topic].publish(raw)
            self.published += 1
            if on_message:
                on_message(topic, log_ns)
        self.finished.set()


class BagRecorder(Node):
    """Records topics (raw CDR) into a new rosbag2; the bag appears only when complete."""

    def __init__(self, out: str | Path, topics: dict[str, str], storage: str = "mcap",
                 name: str = "vode_bag_recorder"):
        from rosbags.rosbag2 import StoragePlugin, Writer

        super().__init__(name)
        self.out = Path(out)
        if self.out.exists():
            raise FileExistsError(f"{self.out} exists; choose another output or delete it")
        # rosbags names the storage file after its folder: write into a hidden parent with the
        # final folder name, then move that folder into place.
        self.tmp_parent = self.out.with_name("." + self.out.name + ".partial")
        shutil.rmtree(self.tmp_parent, ignore_errors=True)
        self.tmp_parent.mkdir(parents=True)
        self.tmp = self.tmp_parent / self.out.name
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(self.tmp, version=9, storage_plugin=plugin)
        self.writer.open()
        self.lock = threading.Lock()
        self.counts = {t: 0 for t in topics}
        self.first_ns: dict[str, int] = {}
        store = vode_typestore()
        self.subs = []
        for topic, msgtype in topics.items():
            conn = self.writer.add_connection(topic, msgtype, typestore=store)
            self.subs.append(self.create_subscription(
                ros_type(msgtype), topic, lambda raw, c=conn, t=topic: self._on_raw(c, t, raw),
                _qos_for(topic), raw=True))

    def _on_raw(self, conn, topic: str, raw: bytes) -> None:
        now = time.time_ns()
        with self.lock:
            if self.writer is None:
                return
            self.writer.write(conn, now, raw)
            self.counts[topic] += 1

    def close(self) -> Path:
        with self.lock:
            if self.writer is not None:
                self.writer.close()
                self.writer = None
        self.tmp.rename(self.out)
        shutil.rmtree(self.tmp_parent, ignore_errors=True)
        return self.out
