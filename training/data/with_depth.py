"""Ground-truth depth for training batches (supervised RNN-MVOD), without touching kitti_snippets.

The synthetic generator (``synthetic.write_kitti_layout``) writes ``depth/NNNNNN.npy`` (float32
z-depth of the left camera in metres, 0 = no value / sky) next to the images. Two ways to get it
into a batch:

- :class:`FrameDepths` loads (and caches) the maps of a folder, resized to the training size, by
  frame index; ``add_gt_depth(batch, depths, offsets)`` adds ``gt_depth`` (B, 1 + S, 1, H, W) =
  [frame t, frames t + stride * offsets] to a batch of :class:`KittiSnippets` from its ``index``
  and ``stride`` (what the RNN-MVOD method does, since the trainer builds a plain KittiSnippets).
- :class:`WithDepth` wraps a KittiSnippets dataset and adds ``gt_depth`` (1 + S, 1, H, W) to
  every item (for a data pipeline that can wrap its dataset).

Resizing uses nearest neighbour, so no depth is blended across edges or with the 0 of the sky.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset


class FrameDepths:
    """depth/<stem>.npy of a KITTI-layout folder at (width, height), by frame index (cached)."""

    def __init__(self, root: str | Path, width: int, height: int, max_frames: int | None = None):
        from vode_ros.core.kitti import load_sequence

        seq = load_sequence(root, max_frames=max_frames or None)
        self.root, self.width, self.height = Path(root), int(width), int(height)
        self.paths = [self.root / "depth" / f"{p.stem}.npy" for p in seq.left]
        self._cache: dict[int, torch.Tensor] = {}

    @property
    def available(self) -> bool:
        return bool(self.paths) and all(p.is_file() for p in self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        """(1, H, W) float32 metres, 0 = no ground truth."""
        i = int(i)
        if i not in self._cache:
            import cv2

            path = self.paths[i]
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no ground-truth depth (depth/NNNNNN.npy, float32 metres)")
            d = np.load(path).astype(np.float32)
            if d.shape != (self.height, self.width):
                d = cv2.resize(d, (self.width, self.height), interpolation=cv2.INTER_NEAREST)
            d[~np.isfinite(d)] = 0.0
            self._cache[i] = torch.from_numpy(np.ascontiguousarray(d))[None]
        return self._cache[i]

    def for_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, N) integer indices -> (B, N, 1, H, W)."""
        return torch.stack([torch.stack([self[int(f)] for f in row]) for row in frames.reshape(frames.shape[0], -1)])


def frame_indices(index: torch.Tensor, stride: torch.Tensor, offsets) -> torch.Tensor:
    """Batch ``index`` (B,), ``stride`` (B,), offsets (S,) -> (B, 1 + S) frame numbers [t, t + stride * o]."""
    offs = torch.tensor([0] + [int(o) for o in offsets], dtype=torch.long)
    return index.cpu().long().reshape(-1, 1) + stride.cpu().long().reshape(-1, 1) * offs.reshape(1, -1)


def add_gt_depth(batch: dict[str, torch.Tensor], depths: FrameDepths, offsets) -> dict[str, torch.Tensor]:
    """A copy of a KittiSnippets batch with ``gt_depth`` (B, 1 + S, 1, H, W) = [tgt, src...]."""
    out = dict(batch)
    stride = batch.get("stride", torch.ones_like(batch["index"]))
    out["gt_depth"] = depths.for_frames(frame_indices(batch["index"], stride, offsets)).to(batch["tgt"].device)
    return out


class WithDepth(Dataset):
    """Wraps a KittiSnippets: every item gets ``gt_depth`` (1 + S, 1, H, W) = [tgt, src...] in metres."""

    def __init__(self, snippets, max_frames: int | None = None):
        self.snippets = snippets
        self.depths = FrameDepths(snippets.root, snippets.width, snippets.height, max_frames)
        if not self.depths.available:
            raise FileNotFoundError(f"{snippets.root}: no depth/NNNNNN.npy ground truth for every frame")

    @property
    def channels(self) -> int:
        return self.snippets.channels

    def __len__(self) -> int:
        return len(self.snippets)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = dict(self.snippets[i])
        t, s = int(item["index"]), int(item.get("stride", 1))
        item["gt_depth"] = torch.stack([self.depths[t + s * o] for o in (0,) + tuple(self.snippets.offsets)])
        return item
