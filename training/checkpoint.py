"""Training checkpoints: what a run writes, how it resumes, what ships.

``checkpoint.pt`` (written atomically, loads with ``torch.load(path, weights_only=True)``):
{format, method, config, channels, step, models: {net name: state_dict}, optimizer, loss, and
from the trainer: rng (per rank: torch / cuda / numpy / python RNG states, :func:`rng_state`),
sampler (the data order), world_size}. :func:`export_nets` writes the nets-only copy that ships
and that ``train.init`` / ``--init`` / ``vode export`` take; :func:`method_from_checkpoint`
rebuilds the method from either.
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vode_ros.core.atomic_file import atomic_write

from .config import validate
from .methods import Method, build_method

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "vode_training/1"


# --------------------------------------------------------------------------- RNG states

def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """All RNG states of this process, in types ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(np_state[0]), "key": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


# --------------------------------------------------------------------------- checkpoints

def _atomic_save(obj: Any, path: Path) -> Path:
    with atomic_write(path, binary=True) as fh:
        torch.save(obj, fh)
    return path


def save_checkpoint(path: str | Path, method: Method, optimizer: torch.optim.Optimizer | None,
                    step: int, cfg: dict[str, Any], loss: float | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Atomic write: a half-written file never replaces a good checkpoint. ``extra``: rng, sampler, ..."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "method": cfg["method"],
        "config": cfg,
        "channels": method.channels,
        "step": int(step),
        "models": {name: {k: v.detach().cpu() for k, v in net.state_dict().items()}
                   for name, net in method.nets.items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "loss": float(loss) if loss is not None else float("nan"),
    }
    state.update(extra or {})
    return _atomic_save(state, Path(path))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - damaged, truncated, or a pickle that is not plain weights
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0].split(". ")[0][:100]
        raise ValueError(f"{path}: not a readable checkpoint ({exc.__class__.__name__}: {first}); it is damaged, "
                         "cut short, or holds objects other than weights (refused): use another checkpoint "
                         "(`vode train` writes checkpoint.pt) or train again") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a vode_training checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def export_nets(src: str | Path, dst: str | Path) -> Path:
    """A nets-only copy of a checkpoint (weights, config, step; no optimizer / RNG / data order):
    small, ``weights_only``-loadable, usable by ``train.init`` / ``--init`` and ``vode export``."""
    ckpt = load_checkpoint(src)
    slim = {k: ckpt[k] for k in ("format", "method", "config", "channels", "step", "models", "loss")}
    slim["optimizer"] = {}
    # Where this run started from is history, not a setting to inherit: fine-tuning from the copy
    # (--init) must load every net, and the copy must not name a file on the machine that trained it.
    train = dict(slim["config"].get("train", {}))
    if train.get("init") or train.get("init_nets"):
        train["init"], train["init_nets"] = "", []
        slim["config"] = {**slim["config"], "train": train}
    return _atomic_save(slim, Path(dst))


def resolve_checkpoint(path: str | Path, method: str | None = None) -> Path:
    """A checkpoint file, or a folder holding one: checkpoint.pt, else the only *.pt, else the
    *.pt whose name starts with the method name (e.g. models/ -> models/sfmlearner_driving.pt)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint file or folder")
    if (path / CHECKPOINT_NAME).is_file():
        return path / CHECKPOINT_NAME
    cands = sorted(path.glob("*.pt"))
    if len(cands) > 1 and method:
        cands = [c for c in cands if c.name.startswith(method)] or cands
    if len(cands) == 1:
        return cands[0]
    if not cands:
        raise FileNotFoundError(f"{path}: no *.pt checkpoint in the folder (export one with "
                                f"vode_training.checkpoint.export_nets)")
    raise ValueError(f"{path}: several checkpoints ({', '.join(c.name for c in cands)}); name the file")


def weights_digest(method: Method) -> str:
    """SHA-256 of all net weights (name order), e.g. to check that distributed ranks agree."""
    h = hashlib.sha256()
    for name, net in sorted(method.nets.items()):
        for key, value in sorted(net.state_dict().items()):
            h.update(f"{name}.{key}".encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def method_from_checkpoint(ckpt: dict[str, Any]) -> Method:
    """Rebuild the method of a loaded checkpoint with its weights, in eval mode."""
    cfg = validate(ckpt["config"])
    method = build_method(cfg, int(ckpt["channels"]))
    for name, sd in ckpt["models"].items():
        method.nets[name].load_state_dict(sd)
    return method.eval()
