"""The online adapter: gradient steps of the model's own training method in a background thread,
judged on held-out snippets, rolled back or accepted, exported and swapped into the node."""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .files import atomic_copy
from .guard import PRIMARY, judge
from .replay import FrameStore, Snippet
from .settings import ADAPTED_NOTE, AdaptationError, AdaptSettings, AdaptStats

LOG = logging.getLogger("vode_ros.tools.adaptation")


def max_stride_of(value: int | list[int]) -> int:
    """data.max_stride of a training config: one value, or one per sequence of a mixed-domain set
    (the live camera may be any of them, so the replay draws from the longest)."""
    return max(1, *(int(v) for v in np.atleast_1d(value)))


class OnlineAdapter:
    """See the module docstring. ``model_meta`` (vode_ros.runtime.inference.ModelMeta) of the depth model
    in use: the checkpoint must match its method, size and colour."""

    def __init__(self, settings: AdaptSettings, model_meta, on_accept: Callable[[Path], None] | None = None,
                 logger=None):
        import torch  # noqa: F401  (the first torch import happens here, only with adapt on)
        from vode_training.checkpoint import load_checkpoint, method_from_checkpoint

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
                                max_stride_of(d.get("max_stride", 1)), stereo=self.use_stereo)
        self.rng = np.random.default_rng(s.seed)
        self._lock = threading.Lock()               # accepted weights + live dir
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prod_cache: tuple[int, int, float] | None = None   # (holdout version, accepted version, loss)
        self._errors_in_row = 0
        self._step_times: deque[float] = deque(maxlen=20)

    def _new_optimizer(self):
        from vode_training.optim import build_optimizer

        return build_optimizer(self.trainable, self.cfg["train"], lr=self.settings.lr)

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
        from vode_training.optim import gradient_step

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
        gradient_step(self.optimizer, total, self.trainable, float(self.cfg["train"].get("grad_clip", 0.0) or 0.0))
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
        verdict = judge({PRIMARY: prod}, {PRIMARY: cand})    # the rule of `vode adapt` too
        self.stats.last_reason = verdict.summary
        if verdict.install:
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
        self.log.warning(f"adaptation: held-out photometric loss {prod:.5f} -> {cand:.5f} ({self.stats.last_reason}); "
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
        from vode_training.checkpoint import save_checkpoint

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
                    atomic_copy(src, out / name)
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
                ("adapt_last_reason", s.last_reason),
                ("adapt_train_loss", f"{s.last_loss:.5f}"), ("adapt_steps_per_second", f"{self.steps_per_second:.2f}"),
                ("adapt_buffer_frames", str(len(self.store))), ("adapt_heldout_snippets", str(len(self.store.holdout))),
                ("adapt_stereo", str(self.use_stereo)), ("adapt_checkpoint", str(self.settings.checkpoint)),
                ("adapt_live_dir", str(self.live_dir))]
