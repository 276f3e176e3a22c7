"""Online self-supervised adaptation of the running depth (and pose) nets.

The depth node (parameter ``adapt``) hands every processed frame to an :class:`OnlineAdapter`.
The adapter

- keeps a bounded replay buffer of recent frames at the network's resolution (grey or RGB as
  the model; the right image too when the node runs in stereo mode), as uint8 (:class:`FrameStore`);
- holds every n-th frame out (``holdout_every``): a held-out frame is never part of a training
  snippet, it is the target of a held-out snippet (its neighbours as sources) used only to judge;
- takes gradient steps of the model's own training method (rebuilt from a torch checkpoint with
  ``vode_training.trainer.method_from_checkpoint``: same nets, same loss terms) in a background
  thread, at most ``max_steps_per_second``, with ``threads`` torch threads and a lowered
  scheduling priority (``nice``), so the inference thread keeps its CPU;
- every ``check_every`` steps compares the photometric loss on the held-out snippets of the
  candidate (the weights being trained) with the accepted weights (those in production): a
  candidate that is not better is rolled back (the accepted state is restored, Adam's moments are
  reset; logged, counted, WARN on /diagnostics); a better one is accepted, exported to ONNX
  (``vode_training.export``, parity-checked), moved atomically into ``<save_dir>/live/`` and handed
  to ``on_accept(live_dir)``, which builds the new ONNX Runtime session in this thread and swaps
  the node's model reference under its model_lock. Inference never waits on training;
- writes the accepted weights on request (:meth:`OnlineAdapter.save`): depth.onnx + pose.onnx
  (metadata ``vode.trained_on`` = "<original> + online adaptation (N steps)", ``vode.adaptation``
  a JSON summary) and a nets-only ``checkpoint.pt``, each moved into place with os.replace.
  ``model_dir:=<save_dir>`` loads them at the next start (and, with adapt on, adaptation continues
  from that folder's checkpoint.pt).

Snippets never span a break in the stream: a stamp going backwards (a bag looping) or a gap
longer than ``MAX_GAP_S`` starts a new segment.

Importing this module does not import torch (the run time without ``adapt`` stays torch-free);
the :class:`OnlineAdapter` constructor does.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

LOG = logging.getLogger("vode_ros.tools.adaptation")
MAX_GAP_S = 1.0          # a larger gap between processed frames breaks the snippet chain
ADAPTED_NOTE = "online adaptation"


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


# -- adapter ------------------------------------------------------------------------------------
@dataclass
class AdaptSettings:
    checkpoint: str                       # torch checkpoint of the model in use (nets + config)
    save_dir: str                         # ~/save_adapted writes here; live swaps go to save_dir/live
    buffer_size: int = 64
    holdout_every: int = 5
    holdout_size: int = 8
    batch_size: int = 2
    lr: float = 5e-5
    max_steps_per_second: float = 1.0
    threads: int = 1
    check_every: int = 10
    nice: int = 10                        # added to the adapter thread's niceness (Linux)
    stereo: bool = False                  # the node runs in stereo mode (right images arrive)
    seed: int = 0


@dataclass
class AdaptStats:
    steps: int = 0
    checks: int = 0
    swaps: int = 0
    rollbacks: int = 0
    export_failures: int = 0
    errors: int = 0
    last_loss: float = float("nan")
    heldout_before: float = float("nan")   # production (accepted) weights, last check
    heldout_after: float = float("nan")    # candidate weights, last check
    last_check: str = ""                   # accepted | rolled back | ""
    last_check_time: float = 0.0
    version: int = 0                       # accepted versions exported
    state: str = "starting"
    failed: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AdaptationError(RuntimeError):
    """Adaptation cannot run with this checkpoint / model / mode; the message says why."""


def nets_only_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Copy a training checkpoint without its optimizer state (what the adapter starts from)."""
    import torch

    from vode_training import trainer

    if hasattr(trainer, "export_nets"):
        return trainer.export_nets(src, dst)
    ckpt = trainer.load_checkpoint(src)
    ckpt["optimizer"] = {}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, dst)
    return dst


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class OnlineAdapter:
    """See the module docstring. ``model_meta`` (vode_ros.runtime.inference.ModelMeta) of the depth model
    in use: the checkpoint must match its method, size and colour."""

    def __init__(self, settings: AdaptSettings, model_meta, on_accept: Callable[[Path], None] | None = None,
                 logger=None):
        import torch  # noqa: F401  (the first torch import happens here, only with adapt on)

        from vode_training.trainer import load_checkpoint, method_from_checkpoint

        self.settings = s = settings
        self.log = logger or LOG
        self.on_accept = on_accept
        self.stats = AdaptStats()
        self.save_dir = Path(s.save_dir).expanduser()
        self.live_dir = self.save_dir / "live"
        ckpt = load_checkpoint(s.checkpoint)
        cfg = ckpt["config"]
        d = cfg["data"]
        m = model_meta
        mismatch = [f"{name} {a!r} vs {b!r}" for name, a, b in (
            ("method", cfg["method"], m.method), ("width", int(d["width"]), m.width),
            ("height", int(d["height"]), m.height), ("color", d["color"], m.color),
            ("channels", int(ckpt["channels"]), m.channels)) if a != b]
        if mismatch:
            raise AdaptationError(f"adapt_checkpoint {s.checkpoint} does not belong to the model in use "
                                  f"({m.method} {m.width}x{m.height} {m.color}): " + ", ".join(mismatch)
                                  + "; point adapt_checkpoint at the checkpoint the model was exported from")
        self.base_trained_on = m.raw.get("vode.trained_on", Path(d["path"]).name)
        self.base_step = int(ckpt.get("step", 0))
        self.use_stereo = bool(s.stereo)
        if self.use_stereo and m.channels != 1:
            # The node hands over the right image in grey (base.py converts it); an RGB model
            # would compare an RGB target with a grey warp.
            self.log.warning("adaptation: the right image arrives in grey but the model is RGB; "
                             "adapting without the stereo term")
            self.use_stereo = False
        cfg = json.loads(json.dumps(cfg))          # deep copy, plain types
        cfg["data"]["stereo"] = self.use_stereo
        ckpt = dict(ckpt, config=cfg)
        try:
            self.method = method_from_checkpoint(ckpt)     # the candidate, trained
            self.accepted = method_from_checkpoint(ckpt)   # the weights in production
        except ValueError as exc:
            raise AdaptationError(f"adapt_checkpoint {s.checkpoint}: cannot rebuild the method for "
                                  f"{'stereo' if self.use_stereo else 'mono'} adaptation: {exc}") from exc
        self.cfg = cfg = self.method.cfg            # validated: defaults filled in for older checkpoints
        d = cfg["data"]
        self.method.train()
        self.trainable = [p for name, net in self.method.nets.items() if name not in cfg["train"]["freeze"]
                          for p in net.parameters()]
        for name in cfg["train"]["freeze"]:
            self.method.nets[name].requires_grad_(False)
        self.optimizer = self._new_optimizer()
        info = self.method.export_info()
        self.mean = np.asarray(info["mean"], np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(info["std"], np.float32).reshape(-1, 1, 1)
        self.width, self.height, self.channels = int(d["width"]), int(d["height"]), int(ckpt["channels"])
        self.store = FrameStore(s.buffer_size, tuple(d["offsets"]), s.holdout_every, s.holdout_size,
                                int(d.get("max_stride", 1)), stereo=self.use_stereo)
        self.rng = np.random.default_rng(s.seed)
        self._lock = threading.Lock()               # accepted weights + live dir
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prod_cache: tuple[int, int, float] | None = None   # (holdout version, accepted version, loss)
        self._errors_in_row = 0
        self._step_times: deque[float] = deque(maxlen=20)

    def _new_optimizer(self):
        import torch

        tc = self.cfg["train"]
        return torch.optim.Adam([p for p in self.trainable if p.requires_grad], lr=self.settings.lr,
                                betas=(float(tc.get("beta1", 0.9)), float(tc.get("beta2", 0.999))))

    # -- feeding (inference thread: cheap, no torch) ---------------------------------------------
    def add_frame(self, net_in: np.ndarray, k_net: np.ndarray, stamp: float, right_gray: np.ndarray | None = None,
                  baseline: float | None = None) -> None:
        """net_in: the normalised network input (C, H, W) float32 of this frame; right_gray: the
        full-resolution grey right image (stereo mode)."""
        x01 = net_in * self.std + self.mean
        img = np.clip(np.rint(x01 * 255.0), 0, 255).astype(np.uint8)
        right = None
        if self.use_stereo:
            if right_gray is None or not baseline:
                return                             # an unpaired frame cannot join a stereo buffer
            import cv2

            right = cv2.resize(right_gray, (self.width, self.height), interpolation=cv2.INTER_AREA)[None]
        self.store.add(img, k_net, stamp, right, float(baseline or 0.0))

    # -- torch side ----------------------------------------------------------------------------
    def _batch(self, snippets: list[Snippet]) -> dict[str, Any]:
        import torch

        def f(key):
            return torch.from_numpy(np.stack([getattr(s, key) for s in snippets])).float() / 255.0

        tgt, src = f("tgt"), f("src")
        batch = {"tgt": tgt, "src": src, "tgt_in": tgt, "src_in": src,
                 "K": torch.from_numpy(np.stack([s.k for s in snippets]).astype(np.float32)),
                 "baseline": torch.tensor([s.baseline for s in snippets], dtype=torch.float32),
                 "index": torch.tensor([s.seqs[0] for s in snippets]),
                 "stride": torch.ones(len(snippets), dtype=torch.long)}
        if self.use_stereo:
            batch["right"], batch["right_src"] = f("right"), f("right_src")
        return batch

    def ready(self) -> bool:
        return len(self.store.train_candidates()) >= 1 and len(self.store.holdout) >= 1

    def step(self) -> float | None:
        """One gradient step on a random replay batch; None when the buffer is not ready."""
        import torch

        if not self.ready():
            return None
        snippets = self.store.sample(self.settings.batch_size, self.rng)
        if not snippets:
            return None
        t0 = time.perf_counter()
        self.method.train()
        total, _, _ = self.method.compute_loss(self._batch(snippets))
        if not torch.isfinite(total):
            self.log.warning(f"adaptation: non-finite loss at step {self.stats.steps}; rolling back")
            self._rollback(float("nan"), float("nan"))
            return None
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        clip = float(self.cfg["train"].get("grad_clip", 0.0) or 0.0)
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, clip)
        self.optimizer.step()
        self.stats.steps += 1
        self.stats.last_loss = float(total.item())
        self._step_times.append(time.perf_counter() - t0)
        return self.stats.last_loss

    def heldout_loss(self, method) -> float:
        """Mean photometric loss (the terms named photometric*; all terms if none) on the held-out set."""
        import torch

        _, snippets = self.store.heldout()
        if not snippets:
            return float("nan")
        was_training = method.training
        method.eval()
        total, count = 0.0, 0
        chunk = max(1, self.settings.batch_size * 2)
        with torch.no_grad():
            for i in range(0, len(snippets), chunk):
                part = snippets[i:i + chunk]
                batch = self._batch(part)
                out = method(batch)
                photo = [t for t in method.terms if t.name.startswith("photometric")] or method.terms
                total += float(sum(t(out, batch) for t in photo).item()) * len(part)
                count += len(part)
        method.train(was_training)
        return total / count

    def check(self) -> str | None:
        """Judge the candidate on the held-out set: 'accepted' (exported and swapped in) or
        'rolled back'; None when there is no held-out data yet."""
        version, snippets = self.store.heldout()
        if not snippets:
            return None
        cand = self.heldout_loss(self.method)
        with self._lock:
            cache = self._prod_cache
            if cache is not None and cache[:2] == (version, self.stats.version):
                prod = cache[2]
            else:
                prod = self.heldout_loss(self.accepted)
        self.stats.checks += 1
        self.stats.heldout_before, self.stats.heldout_after = prod, cand
        self.stats.last_check_time = time.monotonic()
        if math.isfinite(cand) and cand < prod:
            self._accept(prod, cand)
            self._prod_cache = (version, self.stats.version, cand)
            return "accepted"
        self._prod_cache = (version, self.stats.version, prod)
        self._rollback(prod, cand)
        return "rolled back"

    def _rollback(self, prod: float, cand: float) -> None:
        with self._lock:
            self.method.load_state_dict(self.accepted.state_dict())
        self.optimizer = self._new_optimizer()          # drop the moments that led there
        self.stats.rollbacks += 1
        self.stats.last_check = "rolled back"
        self.log.warning(f"adaptation: held-out photometric loss {prod:.5f} -> {cand:.5f} (candidate not better); "
                         f"rolled back to accepted version {self.stats.version} "
                         f"({self.stats.rollbacks} rollbacks, step {self.stats.steps})")

    def _accept(self, prod: float, cand: float) -> None:
        with self._lock:
            self.accepted.load_state_dict(self.method.state_dict())
            self.stats.version += 1
            self.stats.last_check = "accepted"
            try:
                self._export_live(prod, cand)
            except Exception as exc:  # export or parity failure: keep running on the old model
                self.stats.export_failures += 1
                self.log.error(f"adaptation: export of version {self.stats.version} failed "
                               f"({exc.__class__.__name__}: {exc}); the node keeps its model")
                return
        self.log.info(f"adaptation: held-out photometric loss {prod:.5f} -> {cand:.5f}; version "
                      f"{self.stats.version} accepted after {self.stats.steps} steps")
        if self.on_accept is not None:
            try:
                self.on_accept(self.live_dir)
                self.stats.swaps += 1
            except Exception as exc:
                self.stats.export_failures += 1
                self.log.error(f"adaptation: swapping in {self.live_dir} failed: {exc.__class__.__name__}: {exc}")

    def _export(self, method, out_dir: Path, before: float, after: float) -> None:
        """method's weights -> out_dir/{depth,pose}.onnx + checkpoint.pt (nets only)."""
        import onnx

        from vode_training.export import export_checkpoint
        from vode_training.trainer import save_checkpoint

        steps = self.stats.steps
        ckpt = save_checkpoint(out_dir / "checkpoint.pt", method, None, self.base_step + steps, self.cfg)
        report = export_checkpoint(ckpt, out_dir)
        note = json.dumps({"steps": steps, "version": self.stats.version, "heldout_loss_before": before,
                           "heldout_loss_after": after, "base_checkpoint": str(self.settings.checkpoint),
                           "stereo": self.use_stereo,
                           "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        for kind in report["files"]:
            path = out_dir / f"{kind}.onnx"
            model = onnx.load(str(path))
            props = {p.key: p.value for p in model.metadata_props}
            props["vode.trained_on"] = f"{self.base_trained_on} + {ADAPTED_NOTE} ({steps} steps)"
            props["vode.adaptation"] = note
            del model.metadata_props[:]
            for key, value in props.items():
                e = model.metadata_props.add()
                e.key, e.value = key, value
            onnx.save(model, str(path))

    def _export_live(self, before: float, after: float) -> None:
        """Export the accepted weights and move them into live_dir (caller holds _lock)."""
        self.live_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.save_dir))
        try:
            self._export(self.accepted, staging, before, after)
            for name in ("pose.onnx", "depth.onnx", "checkpoint.pt"):
                if (staging / name).is_file():
                    os.replace(staging / name, self.live_dir / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def save(self, out_dir: str | Path | None = None) -> dict[str, str]:
        """Write the accepted weights (depth.onnx, pose.onnx, checkpoint.pt) into out_dir
        (default: save_dir), each file moved into place atomically; -> {name: path}."""
        out = Path(out_dir).expanduser() if out_dir else self.save_dir
        out.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self.stats.version == 0 or not (self.live_dir / "depth.onnx").is_file():
                self._export_live(self.stats.heldout_before, self.stats.heldout_after)
            written = {}
            for name in ("pose.onnx", "depth.onnx", "checkpoint.pt"):
                src = self.live_dir / name
                if src.is_file():
                    _atomic_copy(src, out / name)
                    written[name] = str(out / name)
        self.log.info(f"adaptation: saved accepted version {self.stats.version} "
                      f"({self.stats.steps} steps) to {out}")
        return written

    # -- background thread -------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="vode-adaptation", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def steps_per_second(self) -> float:
        return len(self._step_times) / sum(self._step_times) if self._step_times else 0.0

    def _loop(self) -> None:
        import torch

        torch.set_num_threads(max(1, int(self.settings.threads)))
        if self.settings.nice > 0 and hasattr(os, "setpriority"):
            try:   # Linux: the niceness of this thread only; torch with 1 thread computes in it
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                               os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + self.settings.nice)
            except OSError:
                pass
        budget = 1.0 / max(1e-3, float(self.settings.max_steps_per_second))
        self.stats.state = "waiting for frames"
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                loss = self.step()
                if loss is None:
                    self._stop.wait(0.2)
                    continue
                self.stats.state = "adapting"
                if self.stats.steps % max(1, self.settings.check_every) == 0:
                    self.check()
                self._errors_in_row = 0
            except Exception as exc:   # a bad batch must not kill the node; give up when it repeats
                self.stats.errors += 1
                self._errors_in_row += 1
                self.log.error(f"adaptation step failed: {exc.__class__.__name__}: {exc}")
                if self._errors_in_row >= 3:
                    self.stats.state = self.stats.failed = f"stopped after 3 errors: {exc.__class__.__name__}: {exc}"
                    return
            self._stop.wait(max(0.0, budget - (time.monotonic() - t0)))
        self.stats.state = "stopped"

    def diagnostics(self) -> list[tuple[str, str]]:
        s = self.stats
        return [("adapt_state", s.state), ("adapt_steps", str(s.steps)), ("adapt_checks", str(s.checks)),
                ("adapt_swaps", str(s.swaps)), ("adapt_rollbacks", str(s.rollbacks)),
                ("adapt_version", str(s.version)), ("adapt_export_failures", str(s.export_failures)),
                ("adapt_heldout_loss_before", f"{s.heldout_before:.5f}"),
                ("adapt_heldout_loss_after", f"{s.heldout_after:.5f}"), ("adapt_last_check", s.last_check),
                ("adapt_train_loss", f"{s.last_loss:.5f}"), ("adapt_steps_per_second", f"{self.steps_per_second:.2f}"),
                ("adapt_buffer_frames", str(len(self.store))), ("adapt_heldout_snippets", str(len(self.store.holdout))),
                ("adapt_stereo", str(self.use_stereo)), ("adapt_checkpoint", str(self.settings.checkpoint)),
                ("adapt_live_dir", str(self.live_dir))]
