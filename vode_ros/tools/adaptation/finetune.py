"""Fine-tuning under a wall-clock budget, with the cheap guards against forgetting.

Each step is one gradient step of the model's own training method (its loss terms, Adam,
``vode_training.optim.gradient_step``) on a batch of the robot's frames, except that a share of
the steps (``base_share``) trains on the base model's own training frames when they are on
this machine (replay of the old task), and every step adds an L2-SP pull toward the base
weights, ``l2sp * sum((w - w_base)^2)`` (Li et al., "Explicit inductive bias for transfer
learning", ICML 2018): the weights move where the new frames need them and stay near the
base elsewhere.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class FinetuneResult:
    steps: int
    base_steps: int              # steps on the base training frames
    seconds: float
    final_loss: float            # mean of the last 20 robot-frame steps
    l2sp_final: float            # sum((w - w_base)^2) at the end
    losses: list[float]


def _batch(dataset, rng: np.random.Generator, batch_size: int) -> dict[str, Any]:
    from torch.utils.data import default_collate

    pick = rng.choice(len(dataset), size=min(batch_size, len(dataset)), replace=len(dataset) < batch_size)
    return default_collate([dataset[int(i)] for i in pick])


def finetune(method, dataset, seconds: float, lr: float, batch_size: int = 4, base_dataset=None,
             base_share: float = 0.25, l2sp: float = 0.0, max_steps: int = 0, seed: int = 0,
             progress: bool = True, grad_clip: float = 0.0) -> FinetuneResult:
    """Train ``method`` (in place) on ``dataset`` for ``seconds`` of wall time (or ``max_steps``
    when > 0, whichever comes first; at least one step)."""
    import torch
    from tqdm import tqdm

    from vode_training.optim import build_optimizer, gradient_step

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    freeze = set(method.cfg["train"].get("freeze", []))
    trainable = [p for name, net in method.nets.items() if name not in freeze for p in net.parameters()]
    anchors = [p.detach().clone() for p in trainable]
    optimizer = build_optimizer(trainable, method.cfg["train"], lr=lr)
    method.train()
    losses: list[float] = []
    steps = base_steps = 0
    t0 = time.monotonic()
    bar = tqdm(total=int(round(seconds)), desc="adapting", unit="s", disable=not progress, leave=False)
    shown = 0
    while True:
        elapsed = time.monotonic() - t0
        if steps and (elapsed >= seconds or (max_steps and steps >= max_steps)):
            break
        on_base = base_dataset is not None and rng.random() < base_share
        batch = _batch(base_dataset if on_base else dataset, rng, batch_size)
        total, _, _ = method.compute_loss(batch)
        if not torch.isfinite(total):
            raise FloatingPointError(f"non-finite loss at adaptation step {steps}; lower --lr")
        if l2sp > 0:
            total = total + l2sp * sum(((p - a) ** 2).sum() for p, a in zip(trainable, anchors))
        gradient_step(optimizer, total, trainable, grad_clip)
        steps += 1
        base_steps += int(on_base)
        if not on_base:
            losses.append(float(total.item()))
        now = int(min(seconds, time.monotonic() - t0))
        if now > shown:
            bar.update(now - shown)
            shown = now
        bar.set_postfix(steps=steps, loss=f"{losses[-1]:.4f}" if losses else "-", refresh=False)
    bar.close()
    method.eval()
    with torch.no_grad():
        drift = float(sum(((p - a) ** 2).sum() for p, a in zip(trainable, anchors)).item())
    tail = losses[-20:] or [float("nan")]
    return FinetuneResult(steps, base_steps, time.monotonic() - t0, float(np.mean(tail)), drift, losses)
