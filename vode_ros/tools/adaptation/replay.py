"""Replay buffer of the online adapter: recent frames at the network's resolution as uint8, every
n-th frame held out to judge, snippets that never span a break in the stream."""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

MAX_GAP_S = 1.0          # a larger gap between processed frames breaks the snippet chain


# -- replay buffer ------------------------------------------------------------------------------
@dataclass
class StoredFrame:
    seq: int                    # running number of the frame in the stream
    segment: int                # frames of one segment are consecutive in time
    heldout: bool
    image: np.ndarray           # (C, H, W) uint8 at network resolution
    right: np.ndarray | None    # (C, H, W) uint8 or None
    k: np.ndarray               # (3, 3) float32 at network resolution
    baseline: float
    stamp: float


@dataclass
class Snippet:
    """Target frame + sources at ``offsets * stride`` (the layout of KittiSnippets), uint8."""
    tgt: np.ndarray                       # (C, H, W)
    src: np.ndarray                       # (S, C, H, W)
    k: np.ndarray                         # (3, 3)
    baseline: float
    right: np.ndarray | None = None       # (C, H, W)
    right_src: np.ndarray | None = None   # (S, C, H, W)
    seqs: tuple[int, ...] = field(default_factory=tuple)   # stream numbers of target and sources


class FrameStore:
    """Bounded replay buffer with a held-out split; thread-safe, numpy only.

    ``capacity`` frames are kept (the oldest go first). Frame number ``seq`` is held out when
    ``seq % holdout_every == holdout_every - 1``; once its neighbours at ``offsets`` (stride 1)
    have arrived, its snippet joins the held-out set (the newest ``holdout_size`` are kept).
    Training snippets contain no held-out frame at all (neither as target nor as source).
    """

    def __init__(self, capacity: int, offsets: tuple[int, ...] = (-1, 1), holdout_every: int = 5,
                 holdout_size: int = 8, max_stride: int = 1, stereo: bool = False, max_gap: float = MAX_GAP_S):
        if capacity < 2:
            raise ValueError(f"adapt_buffer_size must be >= 2 (got {capacity})")
        if holdout_every < 2:
            raise ValueError(f"adapt_holdout_every must be >= 2 (got {holdout_every}): 1 would hold out every frame")
        if not offsets or 0 in offsets:
            raise ValueError(f"offsets {offsets}: need non-zero source offsets")
        self.capacity, self.holdout_every = int(capacity), int(holdout_every)
        self.offsets = tuple(int(o) for o in offsets)
        self.max_stride, self.stereo, self.max_gap = max(1, int(max_stride)), bool(stereo), float(max_gap)
        self.frames: deque[StoredFrame] = deque(maxlen=self.capacity)
        self.holdout: deque[Snippet] = deque(maxlen=max(1, int(holdout_size)))
        self.holdout_version = 0          # changes whenever the held-out set changes
        self.seen = 0
        self.segment = 0
        self._last_stamp: float | None = None
        self._pending: list[int] = []     # seq of held-out frames waiting for their sources
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.frames)

    def add(self, image: np.ndarray, k: np.ndarray, stamp: float, right: np.ndarray | None = None,
            baseline: float = 0.0) -> StoredFrame:
        if image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError(f"FrameStore.add wants a (C, H, W) uint8 image, got {image.dtype} {image.shape}")
        if self.stereo and right is None:
            raise ValueError("FrameStore in stereo mode needs the right image of every frame")
        with self._lock:
            if self._last_stamp is not None and (stamp <= self._last_stamp or stamp - self._last_stamp > self.max_gap):
                self.segment += 1
            self._last_stamp = stamp
            seq = self.seen
            self.seen += 1
            held = seq % self.holdout_every == self.holdout_every - 1
            frame = StoredFrame(seq, self.segment, held, image, right if self.stereo else None,
                                np.asarray(k, np.float32), float(baseline), float(stamp))
            self.frames.append(frame)
            if held:
                self._pending.append(seq)
            self._complete_holdout()
            return frame

    # frames[i].seq == frames[0].seq + i (every frame is appended), so positions follow from seq
    def _at(self, seq: int) -> StoredFrame | None:
        if not self.frames:
            return None
        i = seq - self.frames[0].seq
        return self.frames[i] if 0 <= i < len(self.frames) else None

    def _members(self, target_seq: int, stride: int) -> list[StoredFrame] | None:
        seqs = [target_seq] + [target_seq + stride * o for o in self.offsets]
        members = [self._at(s) for s in seqs]
        if any(m is None for m in members):
            return None
        if len({m.segment for m in members}) != 1:
            return None
        return members

    def _complete_holdout(self) -> None:
        newest = self.frames[-1].seq
        still = []
        for seq in self._pending:
            members = self._members(seq, 1)
            if members is not None:
                self.holdout.append(self._snippet(members))
                self.holdout_version += 1
            elif self._at(seq) is not None and seq + max(self.offsets) > newest \
                    and self._at(seq).segment == self.segment:
                still.append(seq)          # its later sources have not arrived yet
        self._pending = still

    def _snippet(self, members: list[StoredFrame]) -> Snippet:
        tgt, srcs = members[0], members[1:]
        snip = Snippet(tgt=tgt.image, src=np.stack([m.image for m in srcs]), k=tgt.k, baseline=tgt.baseline,
                       seqs=tuple(m.seq for m in members))
        if self.stereo:
            snip.right = tgt.right
            snip.right_src = np.stack([m.right for m in srcs])
        return snip

    def train_candidates(self) -> list[tuple[int, int]]:
        """(target seq, stride) of every snippet that may be trained on."""
        with self._lock:
            out = []
            for f in self.frames:
                for stride in range(1, self.max_stride + 1):
                    members = self._members(f.seq, stride)
                    if members is not None and not any(m.heldout for m in members):
                        out.append((f.seq, stride))
            return out

    def sample(self, n: int, rng: np.random.Generator) -> list[Snippet]:
        """Up to n random training snippets (fewer when the buffer has fewer)."""
        cands = self.train_candidates()
        if not cands:
            return []
        pick = rng.choice(len(cands), size=min(n, len(cands)), replace=False)
        with self._lock:
            out = []
            for i in pick:
                members = self._members(*cands[int(i)])
                if members is not None:           # it may have been evicted meanwhile
                    out.append(self._snippet(members))
            return out

    def heldout(self) -> tuple[int, list[Snippet]]:
        with self._lock:
            return self.holdout_version, list(self.holdout)
