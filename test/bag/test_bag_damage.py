"""Damaged bags and interrupted conversions: one line naming the bag and the problem, nothing
half-done left behind."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vode_ros.bag import topics as T
from vode_ros.bag.kitti_to_bag import convert
from vode_ros.bag.reader import BagReadError, read_messages
from vode_ros.cli.main import main as vode


@pytest.fixture(scope="module")
def truncated_bag(kitti_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("damaged")
    good = Path(convert(kitti_dir, root / "good", progress=False, max_frames=5)["out_path"])
    cut = root / "cut"
    shutil.copytree(good, cut)
    (mcap,) = cut.glob("*.mcap")
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    return cut


def test_bag_info_on_a_truncated_bag_says_it_is_damaged(truncated_bag, capsys):
    """`vode bag info` on a truncated .mcap | exit 2, "damaged, truncated" with the bag named (not "give
    the bag folder")
    """
    assert vode(["bag", "info", str(truncated_bag)]) == 2
    err = capsys.readouterr().err
    assert "damaged, truncated" in err and str(truncated_bag) in err and "give the bag folder" not in err
    with pytest.raises(BagReadError, match="damaged, truncated"):
        list(read_messages(truncated_bag, [T.LEFT_IMAGE]))


def test_a_killed_conversion_leaves_nothing_behind_after_the_next_run(kitti_dir, tmp_path):
    """`vode bag from-kitti` killed (kill -9) half-way | no bag at OUT; the next conversion removes the hidden
    .partial folder it left
    """
    out = tmp_path / "clip"
    proc = subprocess.Popen([sys.executable, "-m", "vode_ros.cli.main", "bag", "from-kitti", str(kitti_dir), str(out),
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.is_file() for p in tmp_path.glob(".clip.partial-*/**/*")):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".clip.partial-*")), "the conversion finished before it could be killed"
    assert not out.exists()
    convert(kitti_dir, out, progress=False, max_frames=3)
    assert out.is_dir() and not list(tmp_path.glob(".clip.partial-*"))
