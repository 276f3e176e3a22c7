"""What one `vode bench` run measures: the settings (CLI flags) and the baseline the ratios refer to."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vode_ros.core.resources import demo_clip

DEFAULT_DATA = demo_clip()
MEAN, STD = [0.45], [0.225]          # the training default (model.mean / model.std)
BASELINE = ("dispnet", "ort-fp32")
OPSET = 17


@dataclass
class BenchConfig:
    width: int = 416
    height: int = 128
    threads: int = 2
    seconds: float = 3.0            # timing budget per candidate (split over the rounds)
    rounds: int = 5
    warmup: int = 2                 # untimed calls per candidate before timing
    min_iters: int = 2              # timed calls per candidate and round, at least
    channels: int = 1               # 1 = grey like the shipped models and the KITTI clip
    models_dir: Path | None = None
    depth_model: Path | None = None  # int8 accuracy model (default: models_dir/depth.onnx)
    data_dir: Path = DEFAULT_DATA
    calib_frames: int = 16
    accuracy_frames: int = 0        # 0 = all frames of the clip
    node_seconds: float = 5.0
    pub_hz: tuple[float, ...] = (0.0, 30.0)   # feed rates of the node runs; 0 = as fast as possible
    torch: bool = True
    int8: bool = True
    int8_baseline: bool = True      # quantise the 31.6 M-parameter DispNet too (seconds of I/O)
    nodes: bool = True
    work_dir: Path | None = None    # keep the exported / quantised models here
    log: Callable[[str], None] = field(default=print, repr=False)
