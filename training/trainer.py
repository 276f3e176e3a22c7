"""Method-agnostic training loop.

    cfg = load_config("config/train/sfmlearner.yaml")
    summary = Trainer(cfg, "runs/sfm").train()

Per step: a batch from the dataset (``data.kind`` picks the loader, ``vode_training.data``) ->
``method.compute_loss`` -> Adam step. Logs go to a tqdm bar and TensorBoard in the run folder:
scalars (loss/total, loss/<term>, metrics, lr) every ``train.log_every`` steps and images (input,
depth colour map, warped sources, explainability masks) every ``train.image_every`` steps.

Checkpoint ``checkpoint.pt`` (``vode_training.checkpoint``: written atomically, loads with
``weights_only=True``) holds the nets, the optimizer, every rank's RNG states and the data order
(epoch, batches consumed in it, generator state at its start). ``Trainer(resume=checkpoint)``
restores all of it, so a resumed run continues bit-exactly (with ``train.num_workers: 0``; with
workers the data order is exact but the augmentation draws happen in the workers and are not
restored). ``train.keep_every`` also keeps nets-only copies ``checkpoint_NNNNNN.pt`` (what
``export_nets`` writes for shipping and fine-tuning; ``train.init`` takes one, or a folder holding one).

A NaN / inf loss stops training with NonFiniteLossError naming the step and the loss term.

Distributed (``vode_training.distributed``): under torchrun or ``vode train --nproc N`` every
process builds the same method (same seed), wraps it in DistributedDataParallel and trains on its
share of each epoch; rank 0 alone logs and writes checkpoints (with every rank's RNG states).
"""
from __future__ import annotations

import math
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from . import distributed as D
from .checkpoint import (CHECKPOINT_NAME, load_checkpoint, resolve_checkpoint, rng_state, save_checkpoint,
                         set_rng_state, weights_digest)
from .config import dump_config
from .data import build_dataset, prepare_data
from .data.sampler import ResumableBatchSampler
from .methods import Method, build_method
from .optim import build_optimizer, gradient_step

class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or inf."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- TensorBoard images

def _rgb(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) in [0, 1] -> (3, H, W)."""
    x = x.detach().float().cpu().clamp(0, 1)
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x[:3]


def _disp_colour(disp: torch.Tensor) -> torch.Tensor:
    """(h, w) inverse depth -> (3, h, w) magma colour map (bright = near), 5-95 % range."""
    from vode_ros.core.colormap import depth_colormap

    inv = disp.detach().float().cpu().numpy()
    depth = np.where(inv > 0, 1.0 / np.maximum(inv, 1e-12), 0.0)
    bgr = depth_colormap(depth)
    return torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1))).float() / 255.0


def default_images(out: dict[str, Any], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Images of the first snippet of a batch from the usual output keys (disps, warped, masks)."""
    imgs: dict[str, torch.Tensor] = {"input/target": _rgb(batch["tgt"][0])}
    for j in range(batch["src"].shape[1]):
        imgs[f"input/source{j}"] = _rgb(batch["src"][0, j])
    disps = out.get("disps") if isinstance(out, dict) else None
    if isinstance(disps, (list, tuple)) and disps and torch.is_tensor(disps[0]) and disps[0].dim() == 4:
        imgs["depth/inverse_depth"] = _disp_colour(disps[0][0, 0])
    warped = out.get("warped") if isinstance(out, dict) else None
    if isinstance(warped, (list, tuple)) and warped and isinstance(warped[0], (list, tuple)):
        for j, w in enumerate(warped[0]):
            if torch.is_tensor(w) and w.dim() == 4:
                imgs[f"warped/source{j}"] = _rgb(w[0])
    masks = out.get("masks") if isinstance(out, dict) else None
    if isinstance(masks, (list, tuple)) and masks and torch.is_tensor(masks[0]):
        for j in range(masks[0].shape[1]):
            imgs[f"explainability/source{j}"] = _rgb(masks[0][0, j:j + 1])
    return imgs


# --------------------------------------------------------------------------- trainer

class _LossModule(nn.Module):
    """What DDP wraps: its forward is the method's compute_loss."""

    def __init__(self, method: Method):
        super().__init__()
        self.method = method

    def forward(self, batch):
        return self.method.compute_loss(batch)


def _to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return batch
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


class Trainer:
    def __init__(self, cfg: dict[str, Any], out_dir: str | Path, resume: str | Path | None = None,
                 progress: bool = True):
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.resume = resume
        self.progress = progress

    def _check_finite(self, step: int, total: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        if torch.isfinite(total):
            return
        bad = [f"{k}={v.item()}" for k, v in terms.items() if not torch.isfinite(v)]
        raise NonFiniteLossError(
            f"step {step}: loss is {total.item()} (non-finite term(s): {', '.join(bad) or 'sum overflow'}); "
            f"try a lower train.lr or check the data")

    @staticmethod
    def _init_from(method: Method, path: str | Path, only: list[str] | tuple[str, ...] = ()) -> None:
        """Load the nets a checkpoint shares with this method (a later stage, or fine-tuning);
        ``only`` restricts it to those net names (train.init_nets)."""
        ckpt = load_checkpoint(resolve_checkpoint(path, method.cfg.get("method")))
        missing = [n for n in only if n not in ckpt["models"] or n not in method.nets]
        if missing:
            raise ValueError(f"train.init_nets names {missing}, but checkpoint {path} has {list(ckpt['models'])} "
                             f"and {method.cfg.get('method')} has {list(method.nets)}")
        shared = [n for n in ckpt["models"] if n in method.nets and (not only or n in only)]
        if not shared:
            raise ValueError(f"train.init {path}: no net in common (checkpoint has {list(ckpt['models'])}, "
                             f"method has {list(method.nets)})")
        for name in shared:
            method.nets[name].load_state_dict(ckpt["models"][name])

    def _images(self, method: Method, batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
        """One extra forward without gradients, in eval mode, RNG states untouched (no effect on training)."""
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            py, npst = random.getstate(), np.random.get_state()
            method.eval()
            try:
                out = method(batch)
                hook = getattr(method, "tensorboard_images", None)
                return hook(out, batch) if callable(hook) else default_images(out, batch)
            finally:
                method.train()
                random.setstate(py)
                np.random.set_state(npst)

    def train(self) -> dict[str, Any]:
        from tqdm import tqdm

        cfg, tc = self.cfg, self.cfg["train"]
        torch.set_num_threads(tc["num_threads"])
        device = D.choose_device(tc["device"], int(os.environ.get("LOCAL_RANK", "0")))
        info = D.init_from_env(tc["backend"], device)
        try:
            return self._train(cfg, tc, device, info, tqdm)
        finally:
            D.cleanup(info)

    def _train(self, cfg, tc, device, info: D.DistInfo, tqdm) -> dict[str, Any]:
        seed_everything(tc["seed"])
        if info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.yaml").write_text(dump_config(cfg))
            prepare_data(cfg)
        D.barrier(info)

        dataset = build_dataset(cfg)
        if len(dataset) < tc["batch_size"] * info.world_size:
            raise ValueError(f"{cfg['data']['path']}: {len(dataset)} snippets, fewer than train.batch_size"
                             + (f" x {info.world_size} processes" if info.enabled else ""))
        sampler = ResumableBatchSampler(len(dataset), tc["batch_size"], tc["seed"], info.rank, info.world_size)
        if sampler.batches_per_epoch() < 1:
            raise ValueError(f"{len(dataset)} snippets over {info.world_size} processes: no full batch of "
                             f"{tc['batch_size']} per process")
        # The loader's own generator only seeds its workers; the global RNG stays untouched.
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=tc["num_workers"],
                            generator=torch.Generator().manual_seed(tc["seed"] + 7919 * info.rank),
                            pin_memory=device.type == "cuda")
        method = build_method(cfg, dataset.channels)
        if tc["init"]:
            self._init_from(method, tc["init"], tc["init_nets"])
        elif tc["init_nets"]:
            raise ValueError("train.init_nets needs train.init (the checkpoint to take them from)")
        for name in tc["freeze"]:
            if name not in method.nets:
                raise ValueError(f"train.freeze names '{name}', but {cfg['method']} has nets {list(method.nets)}")
            method.nets[name].requires_grad_(False)
        method.to(device)
        trainable = [p for p in method.parameters() if p.requires_grad]
        optimizer = build_optimizer(trainable, tc)
        if info.enabled:
            # Same weights everywhere (same seed; DDP also broadcasts rank 0's); own augmentation draws per rank.
            seed_everything(tc["seed"] + 1000003 * info.rank)
        start = 0
        start_epoch = start_position = 0
        if self.resume is not None:
            ckpt = load_checkpoint(self.resume)
            if ckpt["method"] != cfg["method"]:
                raise ValueError(f"{self.resume}: checkpoint is method {ckpt['method']!r}, config says {cfg['method']!r}")
            for name, sd in ckpt["models"].items():
                method.nets[name].load_state_dict(sd)
            if ckpt["optimizer"]:
                optimizer.load_state_dict(ckpt["optimizer"])
            start = int(ckpt["step"])
            if "sampler" in ckpt:
                sampler.load_state(ckpt["sampler"])
                start_epoch, start_position = sampler.epoch, int(ckpt["sampler"]["position"])
            rngs = ckpt.get("rng") or []
            if len(rngs) == info.world_size:
                set_rng_state(rngs[info.rank], device)
        method.train()
        model = method
        if info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(_LossModule(method), device_ids=[device] if device.type == "cuda" else None,
                        find_unused_parameters=tc["find_unused_parameters"])

        def lr_at(step: int) -> float:
            return tc["lr"] * tc["lr_decay_factor"] ** sum(step >= s for s in tc["lr_decay_steps"])

        writer = None
        if info.is_main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out_dir))
        ckpt_path = self.out_dir / CHECKPOINT_NAME
        batches = iter(loader)
        recent: list[float] = []
        losses: list[float] = []
        t0 = time.monotonic()
        bar = tqdm(range(start, tc["steps"]), initial=start, total=tc["steps"], desc=f"train {cfg['method']}",
                   disable=not (self.progress and info.is_main), dynamic_ncols=True)
        loss_value = float("nan")
        consumed = 0
        images_on = bool(tc["image_every"])
        stop = _StopOnSignal(enabled=not info.enabled)
        done = start
        try:
            for step in bar:
                batch = _to(next(batches), device)
                consumed += 1
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
                total, terms, metrics = model(batch) if info.enabled else method.compute_loss(batch)
                if info.enabled:
                    if not D.all_finite(total, info):
                        if torch.isfinite(total):
                            raise NonFiniteLossError(f"step {step}: loss is non-finite on another process")
                        self._check_finite(step, total, terms)
                else:
                    self._check_finite(step, total, terms)
                gradient_step(optimizer, total, method.parameters(), tc["grad_clip"])
                loss_value = total.item()
                losses.append(loss_value)
                recent = (recent + [loss_value])[-20:]
                bar.set_postfix(loss=f"{loss_value:.4f}")
                done = step + 1
                last = done == tc["steps"]
                if done % tc["log_every"] == 0 or last:
                    mean_loss = D.mean_over_ranks(loss_value, info, device)
                    if writer is not None:
                        writer.add_scalar("loss/total", mean_loss, done)
                        for k, v in terms.items():
                            writer.add_scalar(f"loss/{k}", v.item(), done)
                        for k, v in metrics.items():
                            if math.isfinite(v):
                                writer.add_scalar(k, v, done)
                        writer.add_scalar("lr", lr_at(step), done)
                    if not self.progress and info.is_main:      # a plain line for logs of background runs
                        rate = (time.monotonic() - t0) / max(1, done - start)
                        print(f"step {done}/{tc['steps']} loss {mean_loss:.4f} {rate:.2f} s/step", flush=True)
                if writer is not None and images_on and (done % tc["image_every"] == 0 or done == 1):
                    try:
                        for name, img in self._images(method, batch, device).items():
                            writer.add_image(name, img, done)
                    except Exception as exc:    # never let a picture stop training
                        images_on = False
                        warnings.warn(f"TensorBoard images off: {type(exc).__name__}: {exc}")
                # SIGINT / SIGTERM: finish this step, checkpoint it, stop; --resume continues exactly. Read
                # once here, so the signal that decides the save also decides the stop.
                stopping = bool(stop.requested)
                last = last or stopping
                if done % tc["ckpt_every"] == 0 or last or (tc["keep_every"] and done % tc["keep_every"] == 0):
                    rngs = D.gather_objects(rng_state(device), info)
                    if info.is_main:
                        extra = {"rng": rngs, "world_size": info.world_size,
                                 "sampler": sampler.state(consumed, start_epoch, start_position)}
                        if done % tc["ckpt_every"] == 0 or last:
                            save_checkpoint(ckpt_path, method, optimizer, done, cfg, loss_value, extra)
                        if tc["keep_every"] and done % tc["keep_every"] == 0:
                            save_checkpoint(self.out_dir / f"checkpoint_{done:06d}.pt", method, None, done, cfg,
                                            loss_value)
                if stopping:
                    bar.write(f"stopped by {stop.requested} after step {done}; checkpoint {ckpt_path}")
                    break
            D.barrier(info)
        finally:
            stop.restore()
            if writer is not None:
                writer.close()
            bar.close()
        seconds = time.monotonic() - t0
        trained = done - start
        return {
            "checkpoint": str(ckpt_path),
            "steps": done,
            "stopped_by": stop.requested,
            "trained_steps": trained,
            "final_loss": loss_value,
            "final_loss_mean20": float(np.mean(recent)) if recent else float("nan"),
            "seconds": seconds,
            "seconds_per_step": seconds / trained if trained > 0 else float("nan"),
            "losses": losses,
            "rank": info.rank,
            "world_size": info.world_size,
            "weights_digest": weights_digest(method),
        }


class _StopOnSignal:
    """Turns SIGINT / SIGTERM into a request that the loop honours after the current step.

    Only in a single process on the main thread (DDP ranks would have to agree on the step)."""

    def __init__(self, enabled: bool = True):
        import signal
        import threading

        self.requested = ""
        self._old: dict[int, Any] = {}
        if enabled and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        import signal

        self.requested = signal.Signals(signum).name

    def restore(self) -> None:
        import signal

        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()


def _distributed_entry(cfg: dict[str, Any], out_dir: str, resume: str | None, progress: bool) -> dict[str, Any]:
    """Per-process body of :func:`train_distributed` (module level, so spawn can pickle it)."""
    return Trainer(cfg, out_dir, resume=resume, progress=progress).train()


def train_distributed(cfg: dict[str, Any], out_dir: str | Path, nprocs: int, resume: str | Path | None = None,
                      progress: bool = True, result_dir: str | Path | None = None) -> None:
    """Train with ``nprocs`` local processes (torch.multiprocessing, gloo on CPU / nccl on GPU)."""
    D.launch(_distributed_entry, nprocs, (cfg, str(out_dir), str(resume) if resume else None, progress),
             result_dir=str(result_dir) if result_dir else None)
