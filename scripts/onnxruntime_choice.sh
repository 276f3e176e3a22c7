#!/usr/bin/env bash
# Prints, one per line, the pip requirements of ONNX Runtime for this machine (read by setup.sh).
#
#   an NVIDIA GPU that works (nvidia-smi runs and lists one):
#       onnxruntime-gpu with the CUDA and cuDNN wheels from PyPI (extras [cuda,cudnn]), the
#       release line that matches the driver: CUDA 13 drivers get >= 1.27 (built for CUDA 13),
#       CUDA 12 drivers < 1.27 (the last releases built for CUDA 12)
#   otherwise (no GPU, no driver, a driver older than CUDA 12, CI):
#       onnxruntime (the CPU wheel)
#
# TensorRT is opt-in (VODE_TENSORRT=1): its PyPI wheels (tensorrt-cu12-libs / tensorrt-cu13-libs)
# are about 2 GB more; without them the TensorRT provider is skipped and the nodes fall back to
# CUDA (config/vode.yaml lists the providers in order of preference).
#
# Overrides: VODE_ORT=cpu|gpu (skip the detection), VODE_TENSORRT=1.
set -uo pipefail

CPU_REQ="onnxruntime>=1.20"

cuda_major() {
  # The driver's highest CUDA version, from nvidia-smi's banner ("CUDA Version: 12.4").
  nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\)\..*/\1/p' | head -n1
}

gpu_works() {
  command -v nvidia-smi >/dev/null 2>&1 || return 1
  # nvidia-smi exists but fails without a loaded driver (e.g. in a container without the GPU).
  nvidia-smi -L 2>/dev/null | grep -q '^GPU '
}

choice="${VODE_ORT:-auto}"
if [[ "$choice" == auto ]]; then
  if gpu_works; then choice=gpu; else choice=cpu; fi
fi
case "$choice" in
  cpu) echo "$CPU_REQ"; exit 0 ;;
  gpu) ;;
  *) echo "onnxruntime_choice.sh: VODE_ORT must be cpu or gpu, not '$choice'" >&2; exit 2 ;;
esac

major="$(cuda_major)"
if [[ -z "$major" ]]; then
  # Forced with VODE_ORT=gpu, or a banner without the CUDA version: assume a current driver.
  major=13
fi
if (( major >= 13 )); then
  echo "onnxruntime-gpu[cuda,cudnn]>=1.27"
  cu=cu13
elif (( major == 12 )); then
  echo "onnxruntime-gpu[cuda,cudnn]>=1.20,<1.27"
  cu=cu12
else
  echo "onnxruntime_choice.sh: the NVIDIA driver supports CUDA $major only (12 or newer needed): CPU wheel" >&2
  echo "$CPU_REQ"
  exit 0
fi
if [[ "${VODE_TENSORRT:-0}" == 1 ]]; then
  # ONNX Runtime's TensorRT provider links TensorRT 10.
  echo "tensorrt-$cu-libs>=10,<11"
fi
