"""Settings, counters and the error of online adaptation (plain data, no torch)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ADAPTED_NOTE = "online adaptation"    # in vode.trained_on of the models the adapter exports


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
    last_reason: str = ""                  # the held-out guard's verdict at the last check
    last_check_time: float = 0.0
    version: int = 0                       # accepted versions exported
    state: str = "starting"
    failed: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AdaptationError(RuntimeError):
    """Adaptation cannot run with this checkpoint / model / mode; the message says why."""
