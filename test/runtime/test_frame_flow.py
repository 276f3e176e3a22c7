"""Frame accounting, the worker queue (newest frame wins / blocking) and stereo pairing, without ROS."""
from __future__ import annotations

import threading
import time

import pytest

from vode_ros.core.input_checks import camera_info_problem, image_size_problem
from vode_ros.runtime.accounting import FrameAccounts
from vode_ros.runtime.latest_worker import LatestFrameWorker
from vode_ros.runtime.stereo_sync import StereoPairer

GOOD_K = [700.0, 0.0, 600.0, 0.0, 700.0, 180.0, 0.0, 0.0, 1.0]


def test_accounts_balance_and_refuse_a_second_finish():
    a = FrameAccounts()
    for _ in range(4):
        a.received()
    a.published()
    a.dropped()
    a.rejected("decode")
    s = a.snapshot()
    assert s.balanced() and s.frames_pending == 1 and s.rejected == {"decode": 1}
    a.rejected("decode")
    with pytest.raises(RuntimeError, match="no frame pending"):
        a.published()


def test_blocking_worker_processes_every_frame_in_order():
    seen, gate = [], threading.Event()

    def slow(item):
        gate.wait(5.0)
        seen.append(item)

    worker = LatestFrameWorker(slow, capacity=2, blocking=True)
    done = threading.Event()

    def produce():
        for i in range(6):
            worker.submit(i)        # blocks while two frames wait
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    time.sleep(0.2)
    assert not done.is_set()        # back-pressure: the producer waits
    gate.set()
    assert done.wait(5.0) and worker.wait_idle(5.0)
    worker.stop()
    assert seen == list(range(6)) and worker.dropped == 0


def test_newest_frame_wins_reports_each_drop():
    dropped, gate = [], threading.Event()
    worker = LatestFrameWorker(lambda item: gate.wait(5.0), on_drop=dropped.append)
    worker.submit(0)
    time.sleep(0.05)
    for i in range(1, 4):
        worker.submit(i)
    gate.set()
    assert worker.wait_idle(5.0)
    assert dropped == [1, 2] and worker.dropped == 2
    assert worker.stop() == []


def test_pairer_hands_back_every_left_it_gives_up():
    p = StereoPairer(slop=0.01, queue_size=2)
    for t in (1.0, 1.1, 1.2):       # no right image: the oldest left overflows the queue
        assert p.add_left(t, f"L{t}") is None
    assert p.take_unpaired_left() == ["L1.0"]
    assert p.flush_left() == ["L1.1", "L1.2"] and p.unpaired == 3


@pytest.mark.parametrize("k,size,problem", [
    (GOOD_K, (1226, 370), None),
    ([float("nan")] + GOOD_K[1:], (1226, 370), "non-finite"),
    (GOOD_K[:4] + [0.0] + GOOD_K[5:], (1226, 370), "must be > 0"),
    (GOOD_K, (640, 120), "outside"),
    (GOOD_K, (0, 370), "size 0x370"),
])
def test_camera_info_checks(k, size, problem):
    found = camera_info_problem(k, *size)
    assert (found is None) if problem is None else (problem in found)


def test_image_size_checks():
    assert image_size_problem(1, 1, 10**7)[0] == "image_too_small"
    assert image_size_problem(8000, 6000, 4096 * 3072)[0] == "image_too_large"
    assert image_size_problem(0, 10, 0)[0] == "image_empty"
    assert image_size_problem(640, 480, 0) is None
