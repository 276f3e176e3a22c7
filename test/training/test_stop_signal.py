"""SIGTERM stops a training run after the current step with a checkpoint that resumes exactly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--config", "config/train/sfmlearner.yaml", "--set", "data.max_frames=6", "--set", "data.width=128",
        "--set", "data.height=64", "--set", "train.num_threads=1", "--set", "train.ckpt_every=1000",
        "--set", "train.image_every=0", "--set", "train.log_every=1", "--no-progress"]


@pytest.mark.slow
def test_sigterm_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ARGS + ["--set", "train.steps=100000", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "vode_ros.cli.main", "train", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    for line in proc.stdout:                                  # wait for real steps, then stop it
        if line.startswith("step 3/") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, rest
    assert "stopped by SIGTERM" in rest
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert 3 <= ckpt["step"] < 100000                        # the step it was on, not the last periodic one
    resumed = subprocess.run([sys.executable, "-m", "vode_ros.cli.main", "train", *args[:-2],
                              "--set", f"train.steps={ckpt['step'] + 1}", "--out", str(out),
                              "--resume", str(out / "checkpoint.pt")],
                             cwd=REPO, capture_output=True, text=True, timeout=300, env=os.environ)
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == ckpt["step"] + 1
