"""3-frame snippets (t-1, t, t+1) from one KITTI-odometry folder, preloaded in RAM.

Each item is a dict of tensors (C = 1 for grey, 3 for rgb; images float32 in [0, 1]):
    tgt       (C, H, W)      frame t, un-augmented (what the losses compare against)
    src       (S, C, H, W)   source frames t + offsets (default [-1, +1]), un-augmented
    tgt_in    (C, H, W)      frame t as the networks see it (colour-augmented when enabled)
    src_in    (S, C, H, W)   sources as the networks see them
    right     (C, H, W)      right image at t (only when stereo)
    right_src (S, C, H, W)   right images of the sources (only when stereo)
    K         (3, 3)         intrinsics scaled to (W, H) with vode_ros.core.geometry.scale_intrinsics
    baseline  ()             metres (0 when mono)
    gt_src_tgt (S, 4, 4)     ground-truth T_src_tgt when poses.txt exists (for logging only)
    index     ()             target frame index
    stride    ()             frame stride of this snippet (sources at t + stride * offset)

``max_stride`` > 1 draws the stride of each snippet uniformly from 1..max_stride (limited by the
sequence ends), so the pose net sees motions of different lengths and cannot settle on the
constant motion of a short, steady clip.

The augmentation (brightness and contrast, the same factors for every image of a snippet, as
monodepth2) changes only the network inputs; the photometric loss sees the original pixels.
The snippet logic is :class:`vode_training.data.snippets.SnippetDataset` (also used for KITTI raw,
image folders and rosbags); the extra options (scale-crop, saturation, hue, static-frame removal)
are off unless given, so this class gives the same items as before they existed.

For robustness (``vode export`` reads two frames of the training data through this class), a
``root`` that is not a KITTI-odometry folder but a rosbag2, a KITTI raw drive or an image folder
with K.txt / calib.txt is read with the matching loader (``vode_training.data.load_frames``).
"""
from __future__ import annotations

from pathlib import Path

from .snippets import SnippetDataset, to_channels as _to_channels  # noqa: F401  (old name)


class KittiSnippets(SnippetDataset):
    """Snippets of one KITTI-odometry sequence; see the module docstring for the item layout."""

    def __init__(self, root: str | Path, width: int = 416, height: int = 128, color: str = "gray",
                 stereo: bool = False, offsets: tuple[int, ...] = (-1, 1), augment: bool = False,
                 brightness: float = 0.2, contrast: float = 0.2, max_frames: int | None = None,
                 max_stride: int = 1, **options):
        from vode_ros.core.kitti import KittiFormatError

        from . import load_frames
        from .sequences import kitti_odometry

        try:
            seq = kitti_odometry(root, max_frames)
        except KittiFormatError:
            seq = load_frames(root, max_frames=max_frames, stereo=stereo, color=color, size=(width, height))
            if seq is None:
                raise
        if stereo and (seq.right is None or seq.baseline is None):
            raise ValueError(f"{root}: stereo requested but the folder has no right images / P1 calibration")
        self.root = Path(root)
        super().__init__([seq], width, height, color, stereo, offsets, augment, brightness, contrast, max_stride,
                         **options)
