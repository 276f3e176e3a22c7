"""A KITTI folder with a frame number missing from image_0/ and image_1/: every frame keeps the
time stamp and ground-truth pose of its own number (the line of times.txt / poses.txt with that
number), through `vode bag from-kitti`."""
from __future__ import annotations

import shutil

import numpy as np

from vode_ros.bag import topics as T
from vode_ros.bag.kitti_to_bag import base_trajectory, stamp_ns
from vode_ros.core.frames import mount_transform
from vode_ros.bag.reader import read_messages, read_trajectory
from vode_ros.cli.main import main as vode
from vode_ros.core.kitti import load_sequence

MISSING = 3
N = 7


def _clip_with_gap(kitti_dir, tmp_path):
    root = tmp_path / "gap"
    for cam in ("image_0", "image_1"):
        (root / cam).mkdir(parents=True)
        for i in range(N):
            if i != MISSING:
                shutil.copy(kitti_dir / cam / f"{i:06d}.png", root / cam / f"{i:06d}.png")
    for name in ("calib.txt", "times.txt", "poses.txt"):
        shutil.copy(kitti_dir / name, root / name)
    return root


def test_frames_keep_their_own_stamp_and_pose_across_a_gap(kitti_dir, tmp_path, capsys):
    """KITTI folder with one frame number missing from image_0/ and image_1/ | each frame gets the stamp and
    ground-truth pose of its own number (not the previous frame's)
    """
    root = _clip_with_gap(kitti_dir, tmp_path)
    seq = load_sequence(root)
    ids = [i for i in range(N) if i != MISSING]
    assert list(seq.frame_ids) == ids
    times = np.loadtxt(kitti_dir / "times.txt")[:N]
    assert np.allclose(seq.times, times[ids])

    out = tmp_path / "bag"
    assert vode(["bag", "from-kitti", str(root), str(out), "--quiet"]) == 0, capsys.readouterr()
    image_ns = [s for _, s, _ in read_messages(out, [T.LEFT_IMAGE])]
    assert image_ns == [stamp_ns(times[i], 0.0) for i in ids]
    gt_ns, gt = read_trajectory(out, T.GROUND_TRUTH)
    assert list(gt_ns) == image_ns
    # Frame 4's ground truth is line 4 of poses.txt (in base_link), not line 3.
    raw = np.tile(np.eye(4), (N, 1, 1))
    raw[:, :3, :] = np.loadtxt(kitti_dir / "poses.txt")[:N].reshape(-1, 3, 4)
    expected = base_trajectory(raw, mount_transform(list(T.DEFAULT_MOUNT_XYZ), list(T.DEFAULT_MOUNT_RPY)))[ids]
    assert np.allclose(gt, expected, atol=1e-6)
    assert not np.allclose(gt[3], expected[2], atol=1e-3)
