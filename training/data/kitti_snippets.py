"""3-frame snippets (t-1, t, t+1) from one KITTI-odometry folder, preloaded in RAM.

Each item is a dict of tensors (C = 1 for grey, 3 for rgb; images float32 in [0, 1]):
    tgt       (C, H, W)      frame t, un-augmented (what the losses compare against)
    src       (S, C, H, W)   source frames t + offsets (default [-1, +1]), un-augmented
    tgt_in    (C, H, W)      frame t as the networks see it (colour-augmented when enabled)
    src_in    (S, C, H, W)   sources as the networks see them
    right     (C, H, W)      right image at t (only when stereo)
    K         (3, 3)         intrinsics scaled to (W, H) with vode_ros.geometry.scale_intrinsics
    baseline  ()             metres (0 when mono)
    gt_src_tgt (S, 4, 4)     ground-truth T_src_tgt when poses.txt exists (for logging only)
    index     ()             target frame index
    stride    ()             frame stride of this snippet (sources at t + stride * offset)

``max_stride`` > 1 draws the stride of each snippet uniformly from 1..max_stride (limited by the
sequence ends), so the pose net sees motions of different lengths and cannot settle on the
constant motion of a short, steady clip.

The augmentation (brightness and contrast, the same factors for every image of a snippet, as
monodepth2) changes only the network inputs; the photometric loss sees the original pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vode_ros.geometry import invert_se3, scale_intrinsics
from vode_ros.kitti import load_sequence, read_image


def _to_channels(img: np.ndarray, color: str) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) -> (H, W, C) with C = 1 (gray) or 3 (rgb)."""
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


class KittiSnippets(Dataset):
    """Snippets of one KITTI-odometry sequence; see the module docstring for the item layout."""

    def __init__(self, root: str | Path, width: int = 416, height: int = 128, color: str = "gray",
                 stereo: bool = False, offsets: tuple[int, ...] = (-1, 1), augment: bool = False,
                 brightness: float = 0.2, contrast: float = 0.2, max_frames: int | None = None,
                 max_stride: int = 1):
        import cv2

        seq = load_sequence(root, max_frames=max_frames)
        if stereo and (seq.right is None or seq.baseline is None):
            raise ValueError(f"{root}: stereo requested but the folder has no right images / P1 calibration")
        self.root = Path(root)
        self.width, self.height, self.color = int(width), int(height), color
        self.stereo, self.offsets = bool(stereo), tuple(int(o) for o in offsets)
        self.augment, self.brightness, self.contrast = bool(augment), float(brightness), float(contrast)
        self.max_stride = max(1, int(max_stride))
        self.k = scale_intrinsics(seq.k, seq.image_size, (self.width, self.height)).astype(np.float32)
        self.baseline = float(seq.baseline) if (stereo and seq.baseline is not None) else 0.0
        self.poses = seq.poses

        def load(paths):
            out = []
            for p in paths:
                img = _to_channels(read_image(p), color)
                img = cv2.resize(img, (self.width, self.height), interpolation=cv2.INTER_AREA)
                if img.ndim == 2:
                    img = img[:, :, None]
                out.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))))  # (C, H, W) uint8
            return torch.stack(out)

        self.left = load(seq.left)                                     # (N, C, H, W) uint8
        self.right = load(seq.right) if self.stereo else None
        lo, hi = -min(0, min(self.offsets)), len(seq) - max(0, max(self.offsets))
        self.targets = list(range(lo, hi))
        if not self.targets:
            raise ValueError(f"{root}: {len(seq)} frames is too few for offsets {self.offsets}")

    @property
    def channels(self) -> int:
        return int(self.left.shape[1])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        t = self.targets[i]
        stride = 1
        if self.max_stride > 1:
            n = len(self.left)
            room = min([(t // -o) if o < 0 else ((n - 1 - t) // o) for o in self.offsets] + [self.max_stride])
            stride = int(torch.randint(1, room + 1, ()).item())           # torch RNG, seeded by the trainer
        offsets = [stride * o for o in self.offsets]
        tgt = self.left[t].float() / 255.0                              # (C, H, W)
        src = torch.stack([self.left[t + o] for o in offsets]).float() / 255.0  # (S, C, H, W)
        item = {"tgt": tgt, "src": src, "K": torch.from_numpy(self.k.copy()),
                "baseline": torch.tensor(self.baseline, dtype=torch.float32), "index": torch.tensor(t),
                "stride": torch.tensor(stride)}
        if self.stereo:
            item["right"] = self.right[t].float() / 255.0                              # (C, H, W)
            # Right images of the sources too: stereo-temporal methods (UnDeepVO, Deep-VO-Feat).
            item["right_src"] = torch.stack([self.right[t + o] for o in offsets]).float() / 255.0  # (S, C, H, W)
        if self.augment:
            # torch RNG: seeded by the trainer and per DataLoader worker.
            b = 1.0 + (torch.rand(()) * 2 - 1) * self.brightness
            c = 1.0 + (torch.rand(()) * 2 - 1) * self.contrast

            def aug(x):
                mean = x.mean(dim=(-3, -2, -1), keepdim=True)
                return ((x - mean) * c + mean) * b

            item["tgt_in"] = aug(tgt).clamp(0, 1)
            item["src_in"] = aug(src).clamp(0, 1)
        else:
            item["tgt_in"], item["src_in"] = tgt, src
        if self.poses is not None:
            gts = [invert_se3(self.poses[t + o]) @ self.poses[t] for o in offsets]
            item["gt_src_tgt"] = torch.from_numpy(np.stack(gts).astype(np.float32))
        return item
