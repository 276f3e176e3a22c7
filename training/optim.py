"""The optimiser and the gradient step, shared by the offline trainer and the online adapter
(vode_ros.tools.adaptation), so both train the nets the same way: Adam with the config's betas
and weight decay, gradient-norm clipping when ``train.grad_clip`` > 0."""
from __future__ import annotations

from typing import Any, Iterable

import torch


def build_optimizer(parameters: Iterable[torch.nn.Parameter], train_cfg: dict[str, Any],
                    lr: float | None = None) -> torch.optim.Optimizer:
    """Adam over the parameters that require gradients; ``lr`` overrides ``train.lr``."""
    trainable = [p for p in parameters if p.requires_grad]
    return torch.optim.Adam(trainable, lr=float(train_cfg["lr"] if lr is None else lr),
                            betas=(float(train_cfg.get("beta1", 0.9)), float(train_cfg.get("beta2", 0.999))),
                            weight_decay=float(train_cfg.get("weight_decay", 0.0) or 0.0))


def gradient_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                  parameters: Iterable[torch.nn.Parameter], grad_clip: float = 0.0) -> None:
    """Back-propagate a scalar loss and step: zero grads, backward, optional norm clip, step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip and grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(list(parameters), grad_clip)
    optimizer.step()
