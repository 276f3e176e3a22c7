"""scripts/onnxruntime_choice.sh: which ONNX Runtime build setup.sh installs.

nvidia-smi is replaced by small scripts (present and working with a CUDA 12 or 13 driver,
present but failing, absent) on a PATH that holds nothing else of the machine's.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "onnxruntime_choice.sh"
CPU = "onnxruntime>=1.20"
BANNER = """+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 570.86.15              Driver Version: 570.86.15      CUDA Version: {cuda}     |
+-----------------------------------------------------------------------------------------+"""


def _choice(tmp_path: Path, nvidia_smi: str | None, **env: str) -> tuple[int, list[str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("sed", "grep", "head", "bash", "cat"):   # what the scripts use, and nothing else
        link = bin_dir / tool
        if not link.exists():
            link.symlink_to(shutil.which(tool))
    fake = bin_dir / "nvidia-smi"
    fake.unlink(missing_ok=True)
    if nvidia_smi is not None:
        fake.write_text("#!/bin/bash\n" + nvidia_smi)
        fake.chmod(0o755)
    run_env = {"PATH": str(bin_dir), **env}
    out = subprocess.run([shutil.which("bash"), str(SCRIPT)], env=run_env, capture_output=True, text=True,
                         timeout=30)
    return out.returncode, out.stdout.split(), out.stderr


def _working_gpu(cuda: str) -> str:
    banner = BANNER.format(cuda=cuda)
    return (f'if [ "$1" = "-L" ]; then echo "GPU 0: NVIDIA H200 (UUID: GPU-1234)"; exit 0; fi\n'
            f"cat <<'EOF'\n{banner}\nEOF\n")


FAILING = ('echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."\n'
           "exit 9\n")


def test_no_nvidia_smi_gives_the_cpu_wheel(tmp_path):
    assert _choice(tmp_path, None) == (0, [CPU], "")


def test_nvidia_smi_without_a_driver_gives_the_cpu_wheel(tmp_path):
    assert _choice(tmp_path, FAILING)[:2] == (0, [CPU])


@pytest.mark.parametrize("cuda, expected", [
    ("13.0", "onnxruntime-gpu[cuda,cudnn]>=1.27"),
    ("12.8", "onnxruntime-gpu[cuda,cudnn]>=1.20,<1.27"),
])
def test_a_working_gpu_gets_the_cuda_build_for_its_driver(tmp_path, cuda, expected):
    assert _choice(tmp_path, _working_gpu(cuda))[:2] == (0, [expected])


def test_a_driver_older_than_cuda_12_falls_back_to_cpu_and_says_so(tmp_path):
    code, reqs, err = _choice(tmp_path, _working_gpu("11.4"))
    assert (code, reqs) == (0, [CPU]) and "CUDA 11" in err


def test_tensorrt_is_opt_in(tmp_path):
    assert _choice(tmp_path, _working_gpu("12.4"), VODE_TENSORRT="1")[1] == [
        "onnxruntime-gpu[cuda,cudnn]>=1.20,<1.27", "tensorrt-cu12-libs>=10,<11"]
    assert _choice(tmp_path, None, VODE_TENSORRT="1")[1] == [CPU]


def test_overrides(tmp_path):
    assert _choice(tmp_path, _working_gpu("13.0"), VODE_ORT="cpu")[1] == [CPU]
    assert _choice(tmp_path, None, VODE_ORT="gpu")[1] == ["onnxruntime-gpu[cuda,cudnn]>=1.27"]
    code, _, err = _choice(tmp_path, None, VODE_ORT="cuda")
    assert code == 2 and "VODE_ORT must be cpu or gpu" in err


def test_setup_stamp_covers_the_choice():
    setup = (SCRIPT.parent / "setup.sh").read_text()
    assert 'echo "$ORT_REQS"' in setup and "onnxruntime_choice.sh" in setup
    assert "requirements-ros.txt" in setup.split("INPUTS_HASH=")[1].split("\n\n")[0]
    reqs = (SCRIPT.parent / "requirements.txt").read_text().splitlines()
    assert not [r for r in reqs if r.startswith("onnxruntime")], "requirements.txt must leave onnxruntime to setup.sh"
    assert os.access(SCRIPT, os.X_OK)
