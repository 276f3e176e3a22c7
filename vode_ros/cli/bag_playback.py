"""`vode bag play` and `vode bag record`: rosbag2 in and out of ROS 2 without rosbag2.

    vode bag play BAG [--rate R] [--clock] [--loop] [--topics T ...] [--reliable]
                      [--wait-for [TOPIC ...]] [--wait-timeout S] [--wait-subscribers N]
    vode bag record OUT --topics T [T ...] [--storage mcap|sqlite3] [--duration S]

Both use vode_ros.bag.play_record (the player and recorder of `vode demo` and `vode run --bag`).
Lossless replay for evaluation: `--reliable --wait-for` (every sample kept until the readers
acknowledge it, nothing sent before the readers are there). The readers must subscribe
RELIABLE with KEEP_ALL history too: a best-effort reader gets best-effort delivery, and a
KEEP_LAST reader whose callback is slower than the player overwrites samples it has not taken.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path

from vode_ros.cli.arg_types import number
from vode_ros.cli.output_paths import declare_outputs

EXIT_BAD_INPUT = 2
EXIT_NOT_DONE = 1
# After a reader has matched the writer, the reader's side of the discovery needs a moment too:
# samples sent before it has matched the writer are dropped by the reader.
SETTLE_S = 0.5
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def register(sub) -> None:
    """Add `play` and `record` to the `vode bag` sub-command parser."""
    play = sub.add_parser(
        "play", help="publish a bag's messages at their recorded pace",
        description="Publish a rosbag2 (mcap or sqlite3) into ROS 2 at its recorded pace, as raw CDR. "
                    "For lossless replay into nodes under evaluation use --reliable --wait-for, and "
                    "have the nodes subscribe RELIABLE.")
    play.add_argument("bag", metavar="BAG", help="rosbag2 folder (or the .mcap/.db3 file in it)")
    play.add_argument("--rate", type=float, default=1.0, metavar="R",
                      help="playback speed factor (default 1; 0 = as fast as possible)")
    play.add_argument("--clock", action="store_true", help="publish the bag time on /clock (for use_sim_time)")
    play.add_argument("--loop", action="store_true", help="play again from the start until Ctrl-C")
    play.add_argument("--topics", nargs="+", metavar="TOPIC", default=None, help="play only these topics")
    play.add_argument("--reliable", action="store_true",
                      help="keep every sample in the writer (KEEP_ALL: publishing waits for slow reliable "
                           "readers instead of overwriting) and wait up to 10 s for their acknowledgements at "
                           "the end (default: the last 100 per topic, 2 s)")
    play.add_argument("--wait-for", nargs="*", metavar="TOPIC", default=None,
                      help="before the first message, wait until these topics have a subscriber (none "
                           "given: the image topics; in a bag without images, every topic but latched ones). "
                           "Put it after BAG")
    play.add_argument("--wait-timeout", type=float, default=30.0, metavar="S",
                      help="seconds --wait-for waits before giving up (default 30)")
    play.add_argument("--wait-subscribers", type=int, default=1, metavar="N",
                      help="--wait-for waits until each topic has N subscribers (default 1; the number of "
                           "nodes that read it, so that none misses the first frames)")
    play.add_argument("--quiet", action="store_true", help="print only errors")
    play.set_defaults(func=run_play)

    rec = sub.add_parser(
        "record", help="record topics into a new bag until Ctrl-C",
        description="Record topics (raw CDR) into a new rosbag2 until Ctrl-C or --duration. Recording "
                    "starts at once; each topic is subscribed when its first publisher appears, with a QoS "
                    "that follows the publishers (best-effort publishers are recorded best effort). The bag "
                    "folder appears only when the recording is closed.")
    rec.add_argument("out", metavar="OUT", help="bag folder to create (must not exist)")
    rec.add_argument("--topics", nargs="+", metavar="TOPIC", required=True, help="topics to record")
    rec.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="storage plugin (default mcap)")
    rec.add_argument("--duration", type=number(float, low=0.0), default=0.0, metavar="S",
                     help="stop after S seconds (default 0: until Ctrl-C)")
    rec.add_argument("--discovery-timeout", type=number(float, above=0.0), default=10.0, metavar="S",
                     help="warn when a topic has had no publisher for this long (default 10); recording "
                          "goes on, and the topic is recorded from its first publisher on")
    rec.add_argument("--quiet", action="store_true", help="print only errors")
    rec.set_defaults(func=run_record)
    declare_outputs(rec, ("out", "OUT", True))


def _fail(msg: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"vode bag: error: {msg}", file=sys.stderr)
    return code


class _Ros:
    """rclpy on its own context with an executor thread; Ctrl-C stays a KeyboardInterrupt."""

    def __init__(self):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        self.context = Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.thread: threading.Thread | None = None

    def spin(self, *nodes) -> None:
        for n in nodes:
            self.executor.add_node(n)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self, *nodes) -> None:
        from vode_ros.nodes.shutdown import shutdown_executor

        shutdown_executor(self.executor)
        if self.thread is not None:
            self.thread.join(5.0)
        for n in nodes:
            n.destroy_node()
        self.context.try_shutdown()


def run_play(args) -> int:
    from vode_ros.bag.play_record import BagPlayer
    from vode_ros.bag.reader import BagReadError

    if not args.rate >= 0 or math.isinf(args.rate):        # NaN fails the comparison
        return _fail(f"--rate must be 0 (as fast as possible) or positive, not {args.rate}")
    if not args.wait_timeout > 0 or math.isinf(args.wait_timeout):
        return _fail(f"--wait-timeout must be positive, not {args.wait_timeout}")
    if args.wait_subscribers < 1:
        return _fail(f"--wait-subscribers must be 1 or more, not {args.wait_subscribers}")
    ros = _Ros()
    player = None
    try:
        try:
            player = BagPlayer(args.bag, topics=args.topics, rate=args.rate, publish_clock=args.clock,
                               reliable=args.reliable, context=ros.context)
        except BagReadError as exc:
            return _fail(f"{exc}")
        except Exception as exc:  # rosbags raises several types for unreadable bags
            return _fail(f"cannot read {args.bag} as a rosbag2 ({str(exc).rstrip('.')}): the bag is damaged, "
                         "truncated or still being written. Fix: give the folder holding metadata.yaml of a "
                         "complete recording")
        if player.missing_topics:
            return _fail(f"{args.bag} has no topic {', '.join(player.missing_topics)}; "
                         f"it has {', '.join(player.bag_topics) or 'no topics'} (see `vode bag info {args.bag}`)")
        ros.spin(player)
        if args.wait_for is not None:
            code = _wait_for_readers(player, args)
            if code:
                return code
        return _play(player, args)
    finally:
        ros.close(*([player] if player is not None else []))


def _wait_for_readers(player, args) -> int:
    from vode_ros.bag.play_record import LATCHED_TOPICS

    # Default: the image topics, which are what the nodes consume (topics such as ground truth
    # often have no subscriber at all, and would only make the wait time out).
    images = sorted({c.topic for c in player.connections if c.msgtype in IMAGE_TYPES})
    wanted = args.wait_for or images or [t for t in player.publishers_by_topic if t not in LATCHED_TOPICS]
    unknown = [t for t in wanted if t not in player.publishers_by_topic]
    if unknown:
        return _fail(f"--wait-for {', '.join(unknown)}: not played from this bag "
                     f"(played: {', '.join(sorted(player.publishers_by_topic))})")
    count = args.wait_subscribers
    if not args.quiet:
        each = f"{count} subscribers each" if count > 1 else "subscribers"
        print(f"waiting up to {args.wait_timeout:g} s for {each} on {', '.join(wanted)}", flush=True)
    try:
        matched = player.wait_for_subscribers(wanted, args.wait_timeout, count)
    except KeyboardInterrupt:
        return _fail("interrupted while waiting for subscribers", EXIT_NOT_DONE)
    if not matched:
        missing = "fewer than {} subscribers".format(count) if count > 1 else "no subscriber"
        return _fail(f"{missing} on {', '.join(player.unmatched(wanted, count))} after {args.wait_timeout:g} s. "
                     "Fix: start the nodes first (same ROS_DOMAIN_ID), check the topic names, or raise "
                     "--wait-timeout", EXIT_NOT_DONE)
    time.sleep(SETTLE_S)
    return 0


def _play(player, args) -> int:
    from vode_ros.bag.reader import BagReadError

    t0 = time.monotonic()
    worker_error: list[BaseException] = []

    def target():
        try:
            player.play(loops=0 if args.loop else 1)
        except BaseException as exc:  # handed to the main thread, which reports it
            worker_error.append(exc)

    # Play in a thread so that Ctrl-C (always delivered to the main thread) can stop it cleanly.
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    if not args.quiet:
        loop = " in a loop (Ctrl-C stops)" if args.loop else ""
        print(f"playing {player.message_count} messages on {len(player.publishers_by_topic)} topics from "
              f"{args.bag} at rate {args.rate:g}{loop}", flush=True)
    interrupted = False
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        interrupted = True
        player.stop()
        thread.join(5.0)
    if worker_error:
        exc = worker_error[0]
        if isinstance(exc, BagReadError):
            return _fail(f"{exc}. The bag is damaged or still being written; re-record it, or play "
                         "what can be read with --topics", EXIT_NOT_DONE)
        return _fail(f"playback failed after {player.published} messages: {exc}", EXIT_NOT_DONE)
    if not args.quiet:
        how = "stopped by Ctrl-C after" if interrupted else "played"
        print(f"{how} {player.published} messages from {args.bag} in {time.monotonic() - t0:.1f} s")
    return 0


def run_record(args) -> int:
    from vode_ros.bag.play_record import BagRecorder
    from vode_ros.bag.reader import BagReadError
    from vode_ros.nodes.base import topic_name_problem

    out = Path(args.out)
    if out.exists():
        return _fail(f"{out} exists already; choose another OUT or delete it")
    for topic in args.topics:
        problem = topic_name_problem(topic)
        if problem:
            return _fail(f"--topics: {problem}")
    topics = [t if t.startswith("/") else "/" + t for t in dict.fromkeys(args.topics)]
    ros = _Ros()
    recorder = None
    try:
        # Recording starts at once: each topic is subscribed as soon as a publisher of it appears
        # (its type and QoS learnt from that publisher), so nothing a node publishes after this
        # point waits on another topic's publisher.
        try:
            recorder = BagRecorder(out, dict.fromkeys(topics), storage=args.storage, context=ros.context)
        except (BagReadError, OSError) as exc:
            return _fail(str(exc))
        ros.spin(recorder)
        return _record_until_stopped(recorder, args)
    finally:
        if recorder is not None and recorder.writer is not None:
            recorder.close()
        ros.close(*([recorder] if recorder is not None else []))


def _record_until_stopped(recorder, args) -> int:
    if not args.quiet:
        until = f"for {args.duration:g} s" if args.duration else "until Ctrl-C"
        print(f"recording {', '.join(recorder.counts)} into {recorder.out} {until} (each topic from its first "
              "publisher on)", flush=True)
    t0 = time.monotonic()
    warned = False
    try:
        while not args.duration or time.monotonic() - t0 < args.duration:
            time.sleep(0.1)
            if not warned and recorder.waiting and time.monotonic() - t0 > args.discovery_timeout:
                warned = True
                if len(recorder.waiting) == len(recorder.counts):     # nothing to record at all: no bag
                    recorder.discard()
                    return _fail(f"no publisher of {', '.join(recorder.waiting)} within {args.discovery_timeout:g} "
                                 "s, nothing recorded. Fix: start the publisher (same ROS_DOMAIN_ID), check the "
                                 "topic name, or raise --discovery-timeout", EXIT_NOT_DONE)
                print(f"vode bag record: no publisher of {', '.join(recorder.waiting)} after "
                      f"{args.discovery_timeout:g} s; still recording the others and waiting for it (check the "
                      "topic name and ROS_DOMAIN_ID)", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    path = recorder.close()
    if not args.quiet:
        counts = ", ".join(f"{t} x{n}" for t, n in recorder.counts.items())
        never = f"; no publisher ever seen on {', '.join(recorder.waiting)}" if recorder.waiting else ""
        print(f"wrote {path} ({time.monotonic() - t0:.1f} s): {counts}{never}")
    return 0
