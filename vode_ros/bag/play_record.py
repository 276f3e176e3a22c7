"""Play a rosbag2 into ROS 2 and record topics into one, with rclpy and rosbags (no rosbag2).

Messages travel as the CDR bytes stored in the bag (rclpy publishes and receives raw
serialized messages), so nothing is decoded on the way: what the nodes get is what
`ros2 bag play` would send.

Delivery: a DDS sample is delivered reliably only when BOTH the writer and the reader are
RELIABLE, and nothing is lost only when the reader also keeps every sample (KEEP_ALL) until
its callback takes it. The player always offers RELIABLE and waits for the reliable readers'
acknowledgements before it returns; ``reliable=True`` also keeps every sample in the writer's
history (KEEP_ALL: publishing blocks instead of overwriting what a reader has not acknowledged).
A BEST_EFFORT reader (e.g. sensor-data QoS) still matches, but then delivery is best effort.
"""
from __future__ import annotations

import importlib
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from vode_ros.bag.reader import BagReadError, open_bag

# Topics that are latched whatever the bag recorded (late joiners need them).
LATCHED_TOPICS = frozenset({"/tf_static"})


def ros_type(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class."""
    pkg, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise BagReadError(f"message type {msgtype} is not importable in this environment ({exc}); "
                           f"source the workspace that provides {pkg}, or leave its topic out") from exc


def vode_typestore():
    """rosbags typestore for ROS 2 Kilted plus this package's own messages."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from vode_ros.core.resources import resource_path

    store = get_typestore(Stores.ROS2_KILTED)
    add = {}
    for f in sorted(resource_path("msg").glob("*.msg")):
        add.update(get_types_from_msg(f.read_text(), f"vode_ros_msgs/msg/{f.stem}"))
    store.register(add)
    return store


def _recorded_transient_local(conn) -> bool:
    qos = getattr(getattr(conn, "ext", None), "offered_qos_profiles", None) or []
    return any(getattr(q.durability, "name", "") == "TRANSIENT_LOCAL" for q in qos)


def playback_qos(topic: str, latched: bool = False, reliable: bool = False) -> QoSProfile:
    """QoS the player offers on `topic`.

    Latched topics (recorded transient-local, or /tf_static) stay transient-local so that
    nodes started after the message still get it. ``reliable`` keeps all samples (KEEP_ALL):
    the writer blocks instead of overwriting what a slow reliable reader has not acknowledged.
    """
    if latched or topic in LATCHED_TOPICS:
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    if reliable:
        return QoSProfile(history=HistoryPolicy.KEEP_ALL, depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


# Kept for callers of the earlier name.
_qos_for = playback_qos


class BagPlayer(Node):
    """Publishes a bag's messages at their recorded pace times `rate` (0 = as fast as possible).

    The bag is read while playing (not loaded into memory), once per pass (``loops``).
    """

    def __init__(self, bag: str | Path, topics: Iterable[str] | None = None, rate: float = 1.0,
                 publish_clock: bool = False, name: str = "vode_bag_player", reliable: bool = False,
                 **node_kwargs):
        super().__init__(name, **node_kwargs)
        self.bag, self.rate, self.publish_clock, self.reliable = Path(bag), rate, publish_clock, reliable
        self.publishers_by_topic = {}
        wanted = set(topics) if topics is not None else None
        with open_bag(self.bag) as reader:
            self.bag_topics = sorted({c.topic for c in reader.connections})
            self.connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
            self.message_count = sum(c.msgcount for c in self.connections)
            for c in self.connections:
                if c.topic not in self.publishers_by_topic:
                    qos = playback_qos(c.topic, _recorded_transient_local(c), reliable)
                    self.publishers_by_topic[c.topic] = self.create_publisher(ros_type(c.msgtype), c.topic, qos)
        self.missing_topics = sorted(wanted - set(self.publishers_by_topic)) if wanted is not None else []
        self.clock_pub = None
        if publish_clock:
            from rosgraph_msgs.msg import Clock

            self._clock_type = Clock
            self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.published = 0
        self.stop_requested = threading.Event()
        self.finished = threading.Event()

    def wait_for_subscribers(self, topics: Iterable[str], timeout: float = 20.0, count: int = 1) -> bool:
        """Block until every topic has `count` subscribers (DDS discovery takes a moment).

        count > 1 where several nodes read the same topic (a launch file's depth and odometry
        nodes): the first to subscribe must not get frames the others miss.
        """
        topics = [t for t in topics if t in self.publishers_by_topic]
        end = time.monotonic() + timeout
        while time.monotonic() < end and not self.stop_requested.is_set():
            if all(self.publishers_by_topic[t].get_subscription_count() >= count for t in topics):
                return True
            time.sleep(0.05)
        return False

    def unmatched(self, topics: Iterable[str], count: int = 1) -> list[str]:
        """Those of `topics` with fewer than `count` subscribers so far."""
        return [t for t in topics if t in self.publishers_by_topic
                and self.publishers_by_topic[t].get_subscription_count() < count]

    def _messages(self):
        with open_bag(self.bag) as reader:
            conns = [c for c in reader.connections if c.topic in self.publishers_by_topic]
            yield from reader.messages(connections=conns)

    def play(self, on_message: Callable[[str, int], None] | None = None, loops: int = 1) -> None:
        """Blocking playback (call from a thread other than the executor's); loops 0 = forever.

        Raises BagReadError when the bag cannot be read to its end (e.g. a truncated file);
        what was before the damage has been published.
        """
        try:
            n = 0
            while (loops == 0 or n < loops) and not self.stop_requested.is_set():
                if not self._play_once(on_message):
                    return                    # the context was shut down (Ctrl-C in `vode run --bag`)
                n += 1
            # Without this a player that exits right after the last message takes the samples that
            # reliable readers have not acknowledged yet with it (the tail of the bag is lost).
            self.wait_for_acks(10.0 if self.reliable else 2.0)
        finally:
            self.finished.set()

    def _play_once(self, on_message) -> bool:
        """One pass over the bag; False when the context was shut down under it."""
        t0_bag = t0_wall = None
        messages = self._messages()
        try:
            while not self.stop_requested.is_set():
                try:
                    conn, log_ns, raw = next(messages)
                except StopIteration:
                    return True
                except BagReadError:
                    raise
                except Exception as exc:  # rosbags raises several types for damaged storage files
                    raise BagReadError(f"{self.bag}: cannot read past message {self.published}: {exc}") from exc
                if t0_bag is None:
                    t0_bag, t0_wall = log_ns, time.monotonic()
                if self.rate > 0:
                    delay = t0_wall + (log_ns - t0_bag) * 1e-9 / self.rate - time.monotonic()
                    if delay > 0 and self.stop_requested.wait(delay):
                        return True
                try:
                    if self.clock_pub is not None:
                        clock = self._clock_type()
                        clock.clock.sec, clock.clock.nanosec = divmod(log_ns, 1_000_000_000)
                        self.clock_pub.publish(clock)
                    self.publishers_by_topic[conn.topic].publish(bytes(raw))
                except Exception:
                    if not self.context.ok():     # Ctrl-C shut the context down under the player
                        return False
                    raise
                self.published += 1
                if on_message:
                    on_message(conn.topic, log_ns)
            return True
        finally:
            messages.close()   # closes the bag file now, also when stopped early

    def wait_for_acks(self, timeout: float = 10.0) -> bool:
        """Wait until every reliable reader acknowledged every sample (True) or timeout."""
        ok = True
        for pub in self.publishers_by_topic.values():
            ok = pub.wait_for_all_acked(Duration(seconds=timeout)) and ok
        return ok

    def stop(self) -> None:
        self.stop_requested.set()


def recording_qos(node: Node, topic: str) -> QoSProfile:
    """A subscription QoS that matches the publishers seen on `topic` (as `ros2 bag record` does).

    A RELIABLE reader does not match a BEST_EFFORT writer, so any best-effort publisher makes
    the recording best effort; transient-local is asked for only when every publisher offers it.
    """
    infos = node.get_publishers_info_by_topic(topic)
    best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
    latched = bool(infos) and all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    if topic in LATCHED_TOPICS and not infos:
        latched = True
    return QoSProfile(depth=100 if not latched else 10,
                      reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class BagRecorder(Node):
    """Records topics (raw CDR) into a new rosbag2; the bag appears only when complete.

    ``topics`` maps topic -> message type; a type of None is learnt from the topic's first
    publisher: such a topic is subscribed as soon as a publisher appears (checked every
    ``discovery_period`` s), with a QoS that matches it (:func:`recording_qos`), so recording
    starts at once and one topic that comes late does not hold up the others. ``qos`` maps
    topics to subscription QoS for the typed ones (default: reliable, /tf_static transient-local).
    """

    def __init__(self, out: str | Path, topics: dict[str, str | None], storage: str = "mcap",
                 name: str = "vode_bag_recorder", qos: dict[str, QoSProfile] | None = None,
                 discovery_period: float = 0.05, **node_kwargs):
        from rosbags.rosbag2 import StoragePlugin, Writer

        super().__init__(name, **node_kwargs)
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
        self.types: dict[str, str] = {}             # topic -> type, once subscribed
        self._store = vode_typestore()
        self._qos = dict(qos or {})
        self.subs = []
        for topic, msgtype in topics.items():
            if msgtype is not None:
                self._subscribe(topic, msgtype, self._qos.get(topic) or playback_qos(topic))
        self.waiting = [t for t, msgtype in topics.items() if msgtype is None]
        self._discovery = self.create_timer(discovery_period, self._subscribe_new) if self.waiting else None

    def _subscribe(self, topic: str, msgtype: str, profile: QoSProfile) -> None:
        with self.lock:
            conn = self.writer.add_connection(topic, msgtype, typestore=self._store)
        self.types[topic] = msgtype
        self.subs.append(self.create_subscription(
            ros_type(msgtype), topic, lambda raw, c=conn, t=topic: self._on_raw(c, t, raw), profile, raw=True))

    def _subscribe_new(self) -> None:
        """Subscribe to every waiting topic that has a publisher now (its type and QoS from that publisher)."""
        for topic in list(self.waiting):
            infos = self.get_publishers_info_by_topic(topic)
            if not infos:
                continue
            try:
                self._subscribe(topic, infos[0].topic_type, recording_qos(self, topic))
            except BagReadError as exc:           # a type this environment cannot import: said once, left out
                self.get_logger().error(str(exc))
            self.waiting.remove(topic)
        if not self.waiting and self._discovery is not None:
            self.destroy_timer(self._discovery)
            self._discovery = None

    def _on_raw(self, conn, topic: str, raw: bytes) -> None:
        now = time.time_ns()
        with self.lock:
            if self.writer is None:
                return
            self.writer.write(conn, now, raw)
            self.counts[topic] += 1

    def discard(self) -> None:
        """Close without keeping anything: no bag at `out`, no temporary folder."""
        with self.lock:
            if self.writer is not None:
                self.writer.close()
                self.writer = None
        shutil.rmtree(self.tmp_parent, ignore_errors=True)

    def close(self) -> Path:
        with self.lock:
            if self.writer is not None:
                self.writer.close()
                self.writer = None
        self.tmp.rename(self.out)
        shutil.rmtree(self.tmp_parent, ignore_errors=True)
        return self.out
