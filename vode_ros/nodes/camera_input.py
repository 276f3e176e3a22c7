"""The camera side of a vode node: CameraInfo, images (raw or compressed), rectification, stereo pairs.

An image that comes in (already counted in by the node) ends here in exactly one of:
- handed to the node (``node.submit``: its worker runs the model),
- parked: it came before the first usable CameraInfo (or, as a stereo pair, before the right
  CameraInfo) and waits for it; the newest one for a live camera, up to reliable_queue_size with
  reliable input, where nothing may be lost,
- rejected with a reason (``node.reject``: counted, logged throttled, on /diagnostics).

Images are decoded (nodes.ros_msgs), checked (core.input_checks), rectified by their CameraInfo
where they are raw (core.rectify) and, in stereo, paired with the right image of the same stamp
(runtime.stereo_sync).

Stereo, live cameras (best effort): the newest pair wins, and a silent right camera is measured in
stamp time: after ``stereo_timeout`` of left images without a right one, the left images go on alone.
Stereo, reliable input (lossless replay): a pair is one unit of work. The right camera has its own
callback group, so a right image is taken while a left one waits; a left image waits (back-pressure on
its reliable reader) while ``queue_size`` left images already wait for their partners, and a right
image likewise, so neither camera runs ahead of the other and a late partner is matched by stamp
instead of given up. The right camera is silent only when no right image has come for
``stereo_timeout`` of wall time while left images wait and no pair is on its way to the worker.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from vode_ros.core.image_codec import ImageDecodeError, to_gray
from vode_ros.core.input_checks import camera_info_problem, image_size_problem
from vode_ros.core.rectify import (Calibration, Rectifier, calibration_from_info, intrinsics_problem,
                                   rectification_needed, rectification_problem, rectifier_for)
from vode_ros.nodes.ros_msgs import image_from_msg, stamp_to_sec
from vode_ros.runtime.arrival_watch import ArrivalWatch
from vode_ros.runtime.stereo_sync import StereoPairer

if TYPE_CHECKING:
    from vode_ros.nodes.base import VodeNodeBase


class Frame:
    """One camera frame (a left/right pair in stereo) on its way from the callbacks to the worker."""

    __slots__ = ("header", "image", "encoding", "k", "right", "baseline", "received")

    def __init__(self, header, image: np.ndarray, encoding: str, k: np.ndarray):
        self.header, self.image, self.encoding, self.k = header, image, encoding, k
        self.right: np.ndarray | None = None
        self.baseline: float | None = None
        self.received = time.perf_counter()


def baseline_from_camera_info(info: CameraInfo) -> float | None:
    """Stereo baseline (m) from the right camera's P: P[0,3] = -fx' * baseline (ROS convention)."""
    fx, tx = info.p[0], info.p[3]
    return float(-tx / fx) if fx > 0 and tx < 0 and np.isfinite(tx / fx) else None


class CameraInput:
    """The subscriptions and the state of a node's camera input, from configure to cleanup."""

    def __init__(self, node: VodeNodeBase):
        self.node = node
        p = node.params.value
        reliable = bool(p("reliable_input"))
        queue = int(p("reliable_queue_size"))
        self.camera_info: CameraInfo | None = None
        self.calibration: Calibration | None = None       # of camera_info
        self.info_problem: str | None = None
        self.right_info: CameraInfo | None = None
        self.right_calibration: Calibration | None = None
        self.right_info_problem: str | None = None
        self.rectifying: dict[str, str] = {}                # topic -> how its images are remapped (diagnostics)
        self.parked: deque = deque()
        self.parked_pairs: deque = deque()
        self.hold = queue if reliable else 1
        self.first_left: float | None = None       # stamps (s) of the first left and the newest right image
        self.last_right: float | None = None
        self.newest_left: float | None = None      # stamp of the last left image (stereo)
        # Reliable input delivers every image, but left and right may arrive a few frames apart.
        self.pairer = StereoPairer(slop=float(p("stereo_slop")), queue_size=max(5, 2 * queue) if reliable else 5)
        # Input callbacks in their own group: a reliable subscription blocked by back-pressure
        # must not hold up the diagnostics timer or the parameter services.
        self.group = MutuallyExclusiveCallbackGroup()
        # Reliable stereo: the right camera in a group of its own, so that a right image is taken while a
        # left one waits for its partner (one group would let the waiting side starve the other).
        self.reliable = reliable
        self.right_group = MutuallyExclusiveCallbackGroup() if reliable else self.group
        self.cond = threading.Condition()       # the pairer and the stereo state, shared by both callback groups
        self.submit_lock = threading.Lock()      # pairs go to the worker one at a time, in the order they were made
        self.ready_pairs: deque = deque()
        self.closed = False
        self.right_busy = False                  # a right image is being handled (or its pair submitted)
        self.last_right_wall: float | None = None   # monotonic time of the last right image, or of the first left
        self.qos = (QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
                    if reliable else qos_profile_sensor_data)
        self.subscriptions: list = []
        self.received: dict[str, int] = {}              # subscribed image topic -> messages taken
        self.watches: dict = {}                          # image subscription -> (its topic, ArrivalWatch)

    # -- subscriptions ------------------------------------------------------------------------
    def subscribe(self, stereo: bool) -> None:
        """Left image + CameraInfo, and in stereo the right ones (at activation)."""
        p = self.node.params.value
        with self.cond:
            self.closed = False
        self._subscribe(CameraInfo, p("camera_info_topic"), self.on_camera_info)
        self._subscribe_image(p("image_topic"), self.on_image)
        if stereo:
            self._subscribe(CameraInfo, p("right_camera_info_topic"), self.on_right_info, self.right_group)
            self._subscribe_image(p("right_image_topic"), self.on_right_image, self.right_group)

    def close(self) -> None:
        """Callbacks waiting for room or a stereo partner give up (deactivation, process shutdown)."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def unsubscribe(self) -> None:
        """No more camera input: images waiting for their CameraInfo or stereo partner are given up."""
        self.close()
        for sub in self.subscriptions:
            self.node.destroy_subscription(sub)
        self.subscriptions.clear()
        self.watches.clear()
        accounts = self.node.accounts
        with self.cond:
            waiting = len(self.parked) + len(self.parked_pairs) + len(self.ready_pairs) + len(self.pairer.flush_left())
            self.parked.clear()
            self.parked_pairs.clear()
            self.ready_pairs.clear()
        for _ in range(waiting):
            accounts.rejected("inactive")

    def _subscribe(self, typ, topic: str, callback, group=None) -> None:
        self.subscriptions.append(self.node.create_subscription(typ, topic, callback, self.qos,
                                                                callback_group=group or self.group))

    def _subscribe_image(self, topic: str, callback, group=None) -> None:
        compressed = self.node.params.value("image_transport") == "compressed"
        name = topic.rstrip("/") + "/compressed" if compressed else topic
        self.received.setdefault(name, 0)

        def counted(msg, name=name):
            self.received[name] += 1
            callback(msg)

        self._subscribe(CompressedImage if compressed else Image, name, counted, group)
        self.watches[self.subscriptions[-1]] = (name, ArrivalWatch())

    def check_arrival(self) -> None:
        """Once a second (the node's timer): an image topic with publishers and nothing received for a few
        seconds is said once on the log and kept on /diagnostics while it lasts, with the way out."""
        now = time.monotonic()
        for sub, (name, watch) in list(self.watches.items()):
            if sub not in self.subscriptions:          # unsubscribed (deactivated)
                continue
            publishers = self.node.get_publishers_info_by_topic(sub.topic_name)
            if watch.update(len(publishers), self.received.get(name, 0), now):
                self.node.get_logger().warning(self._silence_reason(sub.topic_name, publishers, watch.grace_s))
            if watch.silent:
                self.node.problem("images_not_arriving", self._silence_reason(sub.topic_name, publishers,
                                                                              watch.grace_s), log=False)

    def _silence_reason(self, topic: str, publishers, grace: float) -> str:
        n = len(publishers)
        head = f"{topic} has {n} publisher{'s' if n != 1 else ''} but no image arrived in {grace:.0f} s"
        best_effort = [p for p in publishers if p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT]
        if self.reliable and best_effort:
            return (f"{head}: the publisher is best effort and reliable_input subscribes reliable, so they do not "
                    "match; drop reliable_input, or publish reliable")
        if self.reliable:
            return f"{head}; the camera may not be sending yet"
        return (f"{head}. If the camera is sending, its images are too large for a best-effort input: DDS drops an "
                "image whole when one of its fragments is lost. Fixes "
                "(measured in docs/reliability.md): reliable_input:=true with a reliable publisher (vode run "
                "--reliable-input), image_transport:=compressed, shared memory with a large segment in both processes "
                "(export FASTDDS_DEFAULT_PROFILES_FILE=<vode_ros share>/config/fastdds_large_images.xml), or a "
                "smaller image")

    # -- CameraInfo and rectification -----------------------------------------------------------
    @staticmethod
    def _calibration(msg: CameraInfo) -> tuple[Calibration, str | None]:
        """(the calibration of the published image, why its intrinsics are unusable or None)."""
        cal = calibration_from_info(msg)
        return cal, camera_info_problem(list(msg.k), msg.width, msg.height) or intrinsics_problem(cal)

    def on_camera_info(self, msg: CameraInfo) -> None:
        cal, problem = self._calibration(msg)
        if problem:
            # Never publish depth or odometry with these intrinsics: images wait for a good one.
            self.camera_info = self.calibration = None
            self.info_problem = f"CameraInfo on {self.node.params.value('camera_info_topic')} unusable: {problem}"
            self.node.problem("camera_info_invalid", self.info_problem)
            return
        self.camera_info, self.calibration, self.info_problem = msg, cal, None
        while self.parked:
            self._accept(self.parked.popleft())

    def on_right_info(self, msg: CameraInfo) -> None:
        cal, problem = self._calibration(msg)
        self.right_info, self.right_calibration = msg, (None if problem else cal)
        self.right_info_problem = problem and f"right CameraInfo on " \
            f"{self.node.params.value('right_camera_info_topic')} unusable: {problem}"
        with self.submit_lock:
            while self.parked_pairs:
                self._submit_pair(self.parked_pairs.popleft())

    def rectifier(self, cal: Calibration, topic: str) -> tuple[Rectifier | None, np.ndarray, str]:
        """(the remap the images of `topic` go through, or None to use them as they come; (3, 3) K of the
        images after it; how, for /diagnostics). Where the distortion cannot be undone: no remap and the
        raw K, with a warning, so a camera with an unusual model keeps working as before rectification."""
        mode = self.node.params.value("rectify")
        if not rectification_needed(cal, mode, topic):
            return None, cal.k_rect, ("off" if mode == "off" else "not needed")
        why = rectification_problem(cal)
        if why:
            self.node.problem("rectify_unavailable", f"images of {topic} go on unrectified: {why}")
            return None, cal.k_raw, f"unavailable: {why}"
        return rectifier_for(cal), cal.k_rect, f"on ({cal.describe()})"

    def _rectified(self, image: np.ndarray, cal: Calibration, topic: str) -> tuple[np.ndarray, np.ndarray]:
        """(image, (3, 3) K) as the rectified pinhole camera of `cal` sees it: remapped by K, D, R -> P where
        the image is raw (see rectifier)."""
        rectifier, k, how = self.rectifier(cal, topic)
        if rectifier is not None and self.rectifying.get(topic) != how:
            self.node.get_logger().info(f"rectifying the images of {topic} in the node ({cal.describe()}); rectify "
                                        "elsewhere (image_proc) and subscribe to image_rect to save it")
        self.rectifying[topic] = how
        return (image if rectifier is None else rectifier(image)), k

    # -- images ---------------------------------------------------------------------------------
    def on_image(self, msg) -> None:
        self.node.accounts.received()
        try:
            self._accept(msg)
        except Exception as exc:  # noqa: BLE001 - whatever slipped past the checks is still accounted
            self.node.reject("internal_error", f"image not processed: {exc.__class__.__name__}: {exc}")

    def _accept(self, msg) -> None:
        """An input image (already counted in) ends here in exactly one of: submitted, parked, rejected."""
        node, p = self.node, self.node.params.value
        topic = p("image_topic")
        if isinstance(msg, Image):
            problem = image_size_problem(msg.width, msg.height, int(p("max_image_pixels")))
            if problem:
                return node.reject(problem[0], f"image on {topic} rejected: {problem[1]}")
        if self.camera_info is None:
            if self.info_problem:
                return node.reject("camera_info_invalid", f"image on {topic} rejected: {self.info_problem}")
            # A camera publishes image and CameraInfo together, in either order: keep the
            # newest image(s) until the first CameraInfo arrives instead of losing them.
            return self._park(self.parked, msg, "no_camera_info", f"no CameraInfo yet on {p('camera_info_topic')}; "
                              "waiting for it before processing images")
        try:
            img, enc = image_from_msg(msg)
        except ImageDecodeError as exc:
            return node.reject("decode", f"image on {topic} rejected: {exc}")
        if isinstance(msg, CompressedImage):
            problem = image_size_problem(img.shape[1], img.shape[0], int(p("max_image_pixels")))
            if problem:
                return node.reject(problem[0], f"image on {topic} rejected: {problem[1]}")
        cal = self.calibration
        if (img.shape[1], img.shape[0]) != (cal.width, cal.height):
            return node.reject(
                "size_mismatch", f"image is {img.shape[1]}x{img.shape[0]} but CameraInfo says "
                f"{cal.width}x{cal.height}: publish the CameraInfo that belongs to this image stream")
        image, k = self._rectified(img, cal, topic)
        frame = Frame(msg.header, image, enc, k)
        if not node.stereo:
            return node.submit(frame)
        stamp = stamp_to_sec(msg.header.stamp)
        timeout = float(p("stereo_timeout"))
        with self.cond:
            if self.reliable:
                silent = self._wait_for_room(self.pairer.left, timeout)
                if silent is None:
                    return node.reject("inactive", "left image given up: the camera input was deactivated")
                why = f"no image on {p('right_image_topic')} for {silent:.1f} s while left images wait"
            else:
                # Silence in stamp time, not wall time: the right images of a replay may arrive late.
                if self.first_left is None or stamp < self.first_left:
                    self.first_left = stamp
                silent = stamp - (self.last_right if self.last_right is not None else self.first_left)
                why = f"no image on {p('right_image_topic')} for {silent:.1f} s of left images"
            self.newest_left = stamp
            alone = silent > timeout
            if alone:
                given_up = self.pairer.flush_left()
                self.pairer.drop_right_before(stamp)      # right images too old to ever pair (counted)
            else:
                pair = self.pairer.add_left(stamp, frame)
                given_up = self.pairer.take_unpaired_left()
                if pair is not None:
                    self.ready_pairs.append(pair)
            self.cond.notify_all()
        for _ in given_up:
            node.reject("stereo_unpaired", f"left image without a right partner given up: stereo pair out of sync, "
                        f"{self.pairer.unpaired} images without a partner within {self.pairer.slop} s (check "
                        "stereo_slop and that both cameras are triggered together)")
        if alone:
            node.problem("right_camera_silent", f"{why}: the right camera is silent; left images go on alone "
                         "(depth keeps the last scale)")
            return node.submit(frame)
        self._drain()

    def _right_silence(self) -> float:
        """Under `cond`: wall seconds without a right image (0 while one is handled or a pair is on its way)."""
        if self.right_busy or self.submit_lock.locked() or self.ready_pairs:
            return 0.0
        if self.last_right_wall is None:
            self.last_right_wall = time.monotonic()     # from the first left image on
        return time.monotonic() - self.last_right_wall

    def _wait_for_room(self, queue: deque, timeout: float) -> float | None:
        """Reliable stereo, under `cond`: wait while `queue` (the pairer's left or right side) is full. Returns how
        long the right camera has been silent (wall s), or None once the input is closed."""
        while len(queue) >= self.pairer.queue_size and not self.closed and self._right_silence() <= timeout:
            self.cond.wait(0.05)
        return None if self.closed else self._right_silence()

    def expire_unpaired(self) -> None:
        """Once a second (the node's timer): left images still waiting for a partner after stereo_timeout of wall
        time without any right image are given up (`stereo_unpaired`), so the last frames of a stream whose right
        images stopped do not stay pending."""
        timeout = float(self.node.params.value("stereo_timeout"))
        with self.cond:
            given_up = self.pairer.flush_left() if self.pairer.left and self._right_silence() > timeout else []
            self.cond.notify_all()
        for _ in given_up:
            self.node.reject("stereo_unpaired", f"left image without a right partner given up: no image on "
                             f"{self.node.params.value('right_image_topic')} for {timeout:g} s")

    def _park(self, queue: deque, item, reason: str, why: str) -> None:
        """Keep `item` until its CameraInfo comes; beyond `hold` waiting, the oldest is rejected (`reason`)."""
        if len(queue) >= self.hold:
            queue.popleft()
            self.node.reject(reason, why)
        queue.append(item)

    def on_right_image(self, msg) -> None:
        with self.cond:
            self.right_busy = True
        try:
            self._take_right(msg)
        finally:
            with self.cond:
                self.right_busy = False
                self.last_right_wall = time.monotonic()
                self.cond.notify_all()

    def _take_right(self, msg) -> None:
        stamp = stamp_to_sec(msg.header.stamp)
        try:
            decoded = image_from_msg(msg)
        except ImageDecodeError as exc:
            self.node.problem("right_decode", f"image on {self.node.params.value('right_image_topic')} "
                              f"rejected: {exc}")
            return
        with self.cond:
            if self.last_right is None or stamp > self.last_right or self.last_right - stamp > 1.0:
                self.last_right = stamp          # (a jump back by more than 1 s: the bag looped)
            if self.reliable:                    # the left camera is behind: wait for it (bounded by stereo_timeout)
                end = time.monotonic() + float(self.node.params.value("stereo_timeout"))
                while len(self.pairer.right) >= self.pairer.queue_size and not self.closed and time.monotonic() < end:
                    self.cond.wait(0.05)
            pair = self.pairer.add_right(stamp, decoded)
            # A right image older than every left image still to come can never pair: give it up now
            # (the left it belonged to went on alone, or never came).
            oldest_left = self.pairer.left[0][0] if self.pairer.left else self.newest_left
            if oldest_left is not None:
                self.pairer.drop_right_before(oldest_left)
            given_up = self.pairer.take_unpaired_left()
            if pair is not None:
                self.ready_pairs.append(pair)
            self.cond.notify_all()
        for _ in given_up:
            self.node.reject("stereo_unpaired", f"stereo pair out of sync: {self.pairer.unpaired} images without a "
                             f"partner within {self.pairer.slop} s (check stereo_slop and that both cameras are "
                             "triggered together)")
        self._drain()

    def _drain(self) -> None:
        """Hand the pairs made so far to the worker, oldest first; with reliable input this blocks while the
        worker is full (the back-pressure of one pair)."""
        with self.submit_lock:
            while True:
                with self.cond:
                    if not self.ready_pairs:
                        return
                    pair = self.ready_pairs.popleft()
                self._submit_pair(pair)

    def _submit_pair(self, pair) -> None:
        node, p = self.node, self.node.params.value
        frame, (right, right_enc) = pair
        if right.shape[:2] != frame.image.shape[:2]:
            return node.reject("stereo_size", f"right image is {right.shape[1]}x{right.shape[0]}, left is "
                               f"{frame.image.shape[1]}x{frame.image.shape[0]}: stereo images must be rectified pairs")
        if self.right_info is None:           # the pair came before the right CameraInfo: it waits for it
            return self._park(self.parked_pairs, pair, "right_camera_info",
                              f"no CameraInfo yet on {p('right_camera_info_topic')}; waiting for it before using pairs")
        if self.right_info_problem:
            return node.reject("right_camera_info", self.right_info_problem)
        baseline = baseline_from_camera_info(self.right_info)
        if baseline is None:
            return node.reject("right_camera_info", f"no usable right CameraInfo on {p('right_camera_info_topic')} "
                               "(need P[0,3] = -fx * baseline < 0)")
        cal = self.right_calibration
        if (right.shape[1], right.shape[0]) != (cal.width, cal.height):
            return node.reject("stereo_size", f"right image is {right.shape[1]}x{right.shape[0]} but its CameraInfo "
                               f"says {cal.width}x{cal.height}: publish the CameraInfo of the right image stream")
        frame.right = self._rectified(to_gray(right, right_enc), cal, p("right_image_topic"))[0]
        frame.baseline = baseline
        node.submit(frame)
