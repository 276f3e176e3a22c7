"""Snippets (target frame t and sources t + stride * offsets) from one or more frame sequences.

Each item is a dict of tensors (C = 1 for grey, 3 for rgb; images float32 in [0, 1]):
    tgt        (C, H, W)      frame t (what the losses compare against)
    src        (S, C, H, W)   source frames t + stride * offsets
    tgt_in     (C, H, W)      frame t as the networks see it (colour-jittered when enabled)
    src_in     (S, C, H, W)   sources as the networks see them
    right      (C, H, W)      right image at t (only when stereo)
    right_src  (S, C, H, W)   right images of the sources (only when stereo)
    hint       (1, H, W)      SGBM depth of (tgt, right) in metres, 0 = none (only with depth_hints)
    sensor_depth (1, H, W)    the depth sensor's reading of frame t in metres, 0 = none (only with
                              sensor_depth; all 0 for sequences without depth_0/)
    K          (3, 3)         intrinsics at (W, H) (after the scale-crop augmentation when on)
    baseline   ()             metres (0 when mono)
    gt_src_tgt (S, 4, 4)      ground-truth T_src_tgt when a sequence has poses (identity where it has none)
    gt_valid   ()             1 where gt_src_tgt is real, 0 where the item's sequence has no poses
    index      ()             frame number of the target in its sequence (before static-frame removal)
    stride     ()             frame stride of this snippet

Frames are resized (INTER_AREA) to the training size once and kept in RAM as uint8
(``preload``), or read per item. Randomness (stride, scale-crop, colour jitter) comes from the
torch RNG, seeded by the trainer (and per DataLoader worker), drawn in this order: stride, scale
and crop, flip, brightness, contrast, saturation, hue; draws of disabled options are skipped, so a
config without the newer options gives the same items as before they existed. A flipped item
(``flip``, monodepth2's augmentation) is the mirror image of the snippet with its geometry kept
exact (``augment.mirror_snippet``): K, the stereo roles and the ground-truth motions follow.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vode_ros.core.geometry import invert_se3, scale_intrinsics

from .augment import ColourJitter, mirror_motion, mirror_snippet, random_scale_crop
from .depth_hints import stereo_hint
from .sensor_depth import prepare_depth
from .sequences import FrameSequence, read_frame
from .static_frames import keep_moving


def to_channels(img: np.ndarray, color: str) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) RGB -> (H, W, C) with C = 1 (gray) or 3 (rgb)."""
    import cv2

    if color == "gray":
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        return img[:, :, None]
    if color == "rgb":
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        return img
    raise ValueError(f"color must be 'gray' or 'rgb', got {color!r}")


def prepare_frame(img: np.ndarray, color: str, width: int, height: int) -> torch.Tensor:
    """uint8 image -> (C, H, W) uint8 tensor at the training size."""
    import cv2

    img = to_channels(img, color)
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    if img.ndim == 2:
        img = img[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


class SnippetDataset(Dataset):
    """Snippets over ``sequences``; see the module docstring for the item layout."""

    def __init__(self, sequences: Sequence[FrameSequence], width: int = 416, height: int = 128,
                 color: str = "gray", stereo: bool = False, offsets: tuple[int, ...] = (-1, 1),
                 augment: bool = False, brightness: float = 0.2, contrast: float = 0.2,
                 max_stride: int | Sequence[int] = 1,
                 targets: Sequence[Sequence[int] | None] | None = None, scale_crop: float = 0.0,
                 saturation: float = 0.0, hue: float = 0.0, static_filter: str = "none",
                 static_threshold: float = 1.0, preload: bool = True, stereo_optional: bool = False,
                 depth_hints: bool = False, flip: bool = False, sensor_depth: bool = False):
        if not sequences:
            raise ValueError("no frame sequences")
        self.width, self.height, self.color = int(width), int(height), color
        self.stereo, self.offsets = bool(stereo), tuple(int(o) for o in offsets)
        self.augment, self.brightness, self.contrast = bool(augment), float(brightness), float(contrast)
        self.saturation, self.hue, self.scale_crop = float(saturation), float(hue), float(scale_crop)
        # One stride limit for all sequences, or one per sequence: in a mixed-domain set a desk camera
        # moving millimetres a frame needs longer strides for parallax than a car moving a metre.
        one = isinstance(max_stride, (int, np.integer))
        strides = [max_stride] * len(sequences) if one else list(max_stride)
        if len(strides) != len(sequences):
            raise ValueError(f"max_stride: {len(strides)} values for {len(sequences)} sequences (give one, or one each)")
        self.max_strides = [max(1, int(m)) for m in strides]
        self.preload = bool(preload)
        if depth_hints and not stereo:
            raise ValueError("depth_hints need stereo: true (the hint is the stereo pair's SGBM depth)")
        self.depth_hints = bool(depth_hints)
        self.sensor_depth = bool(sensor_depth)
        self.flip = bool(flip)
        seqs = []
        for seq in sequences:
            if stereo and (seq.right is None or seq.baseline is None):
                if not stereo_optional:
                    raise ValueError(f"{seq.name}: stereo requested but the sequence has no right images / baseline")
                # Mixed stereo and mono sequences: the left frames stand in for the right ones with
                # baseline 0, which the stereo loss terms read as "no stereo pair" and mask out.
                seq = dataclasses.replace(seq, right=list(seq.left), baseline=0.0)
            if static_filter != "none" and static_threshold > 0:
                frames = (prepare_frame(read_frame(f), "gray", self.width, self.height)[0].numpy() for f in seq.left)
                seq = seq.subset(keep_moving(frames, static_filter, static_threshold))
            seqs.append(seq)
        self.sequences = seqs
        self.any_poses = any(s.poses is not None for s in seqs)
        self.ks = [scale_intrinsics(s.k, s.image_size, (self.width, self.height)).astype(np.float32) for s in seqs]
        self.baselines = [float(s.baseline) if (stereo and s.baseline is not None) else 0.0 for s in seqs]
        self.starts = list(np.cumsum([0] + [len(s) for s in seqs[:-1]]))
        self.left = self.right = None
        if self.preload:
            self.left = torch.stack([prepare_frame(read_frame(f), color, self.width, self.height)
                                     for s in seqs for f in s.left])                   # (N, C, H, W) uint8
            if self.stereo:
                self.right = torch.stack([prepare_frame(read_frame(f), color, self.width, self.height)
                                          for s in seqs for f in s.right])
        # Sensor depth at the training size, kept in RAM as float16 (metres; a few mm of rounding).
        self.depths = None
        if self.sensor_depth:
            self.depths = torch.stack([prepare_depth(d, self.width, self.height).half()
                                       for s in seqs for d in (s.depth or [None] * len(s))])   # (N, 1, H, W)
        lo, hi_off = -min(0, min(self.offsets)), max(0, max(self.offsets))
        self.items: list[tuple[int, int]] = []
        for i, s in enumerate(seqs):
            wanted = set(targets[i]) if (targets is not None and targets[i] is not None) else None
            for t in range(lo, len(s) - hi_off):
                if wanted is None or s.frame_ids[t] in wanted:
                    self.items.append((i, t))
        if not self.items:
            raise ValueError(f"{', '.join(s.name for s in seqs)}: too few frames ({sum(len(s) for s in seqs)}) "
                             f"for offsets {self.offsets}")

    # -- single-sequence conveniences (KittiSnippets kept these attributes) -------------------
    @property
    def k(self) -> np.ndarray:
        return self.ks[0]

    @property
    def baseline(self) -> float:
        return self.baselines[0]

    @property
    def poses(self) -> np.ndarray | None:
        return self.sequences[0].poses

    @property
    def targets(self) -> list[int]:
        return [t for _, t in self.items]

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    def __len__(self) -> int:
        return len(self.items)

    def _frame(self, seq_i: int, t: int, right: bool = False) -> torch.Tensor:
        if self.preload:
            return (self.right if right else self.left)[self.starts[seq_i] + t]
        seq = self.sequences[seq_i]
        return prepare_frame(read_frame((seq.right if right else seq.left)[t]), self.color, self.width, self.height)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        seq_i, t = self.items[i]
        seq = self.sequences[seq_i]
        stride = 1
        if self.max_strides[seq_i] > 1:
            n = len(seq)
            room = min([(t // -o) if o < 0 else ((n - 1 - t) // o) for o in self.offsets]
                       + [self.max_strides[seq_i]])
            stride = int(torch.randint(1, room + 1, ()).item())           # torch RNG, seeded by the trainer
        offsets = [stride * o for o in self.offsets]
        tgt = self._frame(seq_i, t).float() / 255.0                                 # (C, H, W)
        src = torch.stack([self._frame(seq_i, t + o) for o in offsets]).float() / 255.0  # (S, C, H, W)
        k = torch.from_numpy(self.ks[seq_i].copy())
        right = right_src = None
        if self.stereo:
            right = self._frame(seq_i, t, right=True).float() / 255.0
            # Right images of the sources too: stereo-temporal methods (UnDeepVO, Deep-VO-Feat).
            right_src = torch.stack([self._frame(seq_i, t + o, right=True) for o in offsets]).float() / 255.0
        depth = self.depths[self.starts[seq_i] + t].float() if self.depths is not None else None   # (1, H, W)
        if self.augment and self.scale_crop > 0:
            imgs = [tgt, src] + ([right, right_src] if self.stereo else [])
            imgs, k = random_scale_crop(imgs, k, self.scale_crop, nearest=[depth] if depth is not None else [])
            tgt, src = imgs[0], imgs[1]
            if self.stereo:
                right, right_src = imgs[2], imgs[3]
            if depth is not None:
                depth = imgs[-1]
        flipped = self.augment and self.flip and bool(torch.rand(()) < 0.5)
        if flipped:
            tgt, src, k, right, right_src = mirror_snippet(tgt, src, k, right, right_src)
            if depth is not None:
                # A stereo mirror swaps the cameras: the target is then the right image, which the
                # left sensor's depth does not describe.
                depth = torch.zeros_like(depth) if self.stereo else depth.flip(-1)
        item = {"tgt": tgt, "src": src, "K": k,
                "baseline": torch.tensor(self.baselines[seq_i], dtype=torch.float32),
                "index": torch.tensor(seq.frame_ids[t]), "stride": torch.tensor(stride)}
        if self.stereo:
            item["right"], item["right_src"] = right, right_src
        if self.depth_hints:
            item["hint"] = stereo_hint(tgt, right, k, self.baselines[seq_i])
        if depth is not None:
            item["sensor_depth"] = depth
        if self.augment:
            jit = ColourJitter(self.brightness, self.contrast, self.saturation, self.hue)
            item["tgt_in"] = jit(tgt)
            item["src_in"] = jit(src)
        else:
            item["tgt_in"], item["src_in"] = tgt, src
        if seq.poses is not None:
            gts = [invert_se3(seq.poses[t + o]) @ seq.poses[t] for o in offsets]
            item["gt_src_tgt"] = torch.from_numpy(np.stack(gts).astype(np.float32))
            if flipped:
                item["gt_src_tgt"] = mirror_motion(item["gt_src_tgt"], self.baselines[seq_i], swap=self.stereo)
            item["gt_valid"] = torch.tensor(1.0)
        elif self.any_poses:       # one batch may mix sequences with and without poses
            item["gt_src_tgt"] = torch.eye(4).repeat(len(offsets), 1, 1)
            item["gt_valid"] = torch.tensor(0.0)
        return item
