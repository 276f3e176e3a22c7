"""Method-agnostic training loop.

    cfg = load_config("config/train/sfmlearner.yaml")
    summary = Trainer(cfg, "runs/sfm").train()

Per step: a batch from the dataset -> ``method.compute_loss`` -> Adam step. Logs go to a tqdm
bar and TensorBoard scalars in the run folder (loss/total, loss/<term>, metrics, lr). The
checkpoint ``checkpoint.pt`` (written to a temporary file, then os.replace) holds
{format, method, config, channels, step, models: {net name: state_dict}, optimizer, loss} and
loads with ``torch.load(path, weights_only=True)``. A NaN / inf loss stops training with
NonFiniteLossError naming the step and the loss term.
"""
from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .config import dump_config, validate
from .data.kitti_snippets import KittiSnippets
from .methods import Method, build_method

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "vode_training/1"


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or inf."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_dataset(cfg: dict[str, Any]) -> KittiSnippets:
    d = cfg["data"]
    return KittiSnippets(d["path"], d["width"], d["height"], d["color"], d["stereo"], tuple(d["offsets"]),
                         d["augment"], d["brightness"], d["contrast"], d["max_frames"] or None,
                         d["max_stride"])


def save_checkpoint(path: str | Path, method: Method, optimizer: torch.optim.Optimizer | None,
                    step: int, cfg: dict[str, Any], loss: float | None = None) -> Path:
    """Atomic write: a half-written file never replaces a good checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": CHECKPOINT_FORMAT,
        "method": cfg["method"],
        "config": cfg,
        "channels": method.channels,
        "step": int(step),
        "models": {name: net.state_dict() for name, net in method.nets.items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "loss": float(loss) if loss is not None else float("nan"),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a vode_training checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def method_from_checkpoint(ckpt: dict[str, Any]) -> Method:
    """Rebuild the method of a loaded checkpoint with its weights, in eval mode."""
    cfg = validate(ckpt["config"])
    method = build_method(cfg, int(ckpt["channels"]))
    for name, sd in ckpt["models"].items():
        method.nets[name].load_state_dict(sd)
    return method.eval()


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
    def _init_from(method: Method, path: str | Path) -> None:
        """Load the nets a checkpoint shares with this method (a later stage, or fine-tuning)."""
        ckpt = load_checkpoint(path)
        shared = [n for n in ckpt["models"] if n in method.nets]
        if not shared:
            raise ValueError(f"train.init {path}: no net in common (checkpoint has {list(ckpt['models'])}, "
                             f"method has {list(method.nets)})")
        for name in shared:
            method.nets[name].load_state_dict(ckpt["models"][name])

    def train(self) -> dict[str, Any]:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        cfg, tc = self.cfg, self.cfg["train"]
        torch.set_num_threads(tc["num_threads"])
        seed_everything(tc["seed"])
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.yaml").write_text(dump_config(cfg))

        dataset = build_dataset(cfg)
        if len(dataset) < tc["batch_size"]:
            raise ValueError(f"{cfg['data']['path']}: {len(dataset)} snippets, fewer than train.batch_size")
        loader = DataLoader(dataset, batch_size=tc["batch_size"], shuffle=True, drop_last=True,
                            num_workers=tc["num_workers"], generator=torch.Generator().manual_seed(tc["seed"]))
        method = build_method(cfg, dataset.channels)
        if tc["init"]:
            self._init_from(method, tc["init"])
        for name in tc["freeze"]:
            if name not in method.nets:
                raise ValueError(f"train.freeze names '{name}', but {cfg['method']} has nets {list(method.nets)}")
            method.nets[name].requires_grad_(False)
        trainable = [p for p in method.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=tc["lr"], weight_decay=tc["weight_decay"])
        start = 0
        if self.resume is not None:
            ckpt = load_checkpoint(self.resume)
            if ckpt["method"] != cfg["method"]:
                raise ValueError(f"{self.resume}: checkpoint is method {ckpt['method']!r}, config says {cfg['method']!r}")
            for name, sd in ckpt["models"].items():
                method.nets[name].load_state_dict(sd)
            if ckpt["optimizer"]:
                optimizer.load_state_dict(ckpt["optimizer"])
            start = int(ckpt["step"])
        method.train()

        def lr_at(step: int) -> float:
            return tc["lr"] * tc["lr_decay_factor"] ** sum(step >= s for s in tc["lr_decay_steps"])

        writer = SummaryWriter(str(self.out_dir))
        ckpt_path = self.out_dir / CHECKPOINT_NAME
        batches = iter(())
        recent: list[float] = []
        t0 = time.monotonic()
        bar = tqdm(range(start, tc["steps"]), initial=start, total=tc["steps"], desc=f"train {cfg['method']}",
                   disable=not self.progress, dynamic_ncols=True)
        step = start
        loss_value = float("nan")
        try:
            for step in bar:
                try:
                    batch = next(batches)
                except StopIteration:
                    batches = iter(loader)
                    batch = next(batches)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
                total, terms, metrics = method.compute_loss(batch)
                self._check_finite(step, total, terms)
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                if tc["grad_clip"] > 0:
                    torch.nn.utils.clip_grad_norm_(method.parameters(), tc["grad_clip"])
                optimizer.step()
                loss_value = total.item()
                recent = (recent + [loss_value])[-20:]
                bar.set_postfix(loss=f"{loss_value:.4f}")
                done = step + 1
                if done % tc["log_every"] == 0 or done == tc["steps"]:
                    writer.add_scalar("loss/total", loss_value, done)
                    for k, v in terms.items():
                        writer.add_scalar(f"loss/{k}", v.item(), done)
                    for k, v in metrics.items():
                        if math.isfinite(v):
                            writer.add_scalar(k, v, done)
                    writer.add_scalar("lr", lr_at(step), done)
                if done % tc["ckpt_every"] == 0 or done == tc["steps"]:
                    save_checkpoint(ckpt_path, method, optimizer, done, cfg, loss_value)
        finally:
            writer.close()
            bar.close()
        return {
            "checkpoint": str(ckpt_path),
            "steps": tc["steps"],
            "trained_steps": tc["steps"] - start,
            "final_loss": loss_value,
            "final_loss_mean20": float(np.mean(recent)) if recent else float("nan"),
            "seconds": time.monotonic() - t0,
        }
