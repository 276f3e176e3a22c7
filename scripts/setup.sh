#!/usr/bin/env bash
# Idempotent set-up of everything vode_ros needs, on a bare Python 3.11 machine or on one
# with a sourced ROS 2 install. Re-running it only checks and returns.
#
#   .venv/                      Python venv (torch, onnxruntime, rosbags, ROS 2 Kilted wheels)
#                               onnxruntime: the CUDA build where an NVIDIA GPU works, else the CPU
#                               wheel (scripts/onnxruntime_choice.sh; VODE_ORT=cpu|gpu, VODE_TENSORRT=1)
#   .venv/ros_ws/install/       interface packages built with rosidl + colcon when not importable:
#                               tf2_msgs (not on PyPI) and vode_ros_msgs (this repo's msg/)
#   .venv/ros_ws/install/vode_ros/
#                               this package in the ament index, laid out as colcon's
#                               --symlink-install makes it (scripts/register_package.py): links to
#                               package.xml, launch/, config/, models/ and lib/vode_ros/ node
#                               executables, so `ros2 launch vode_ros vode.launch.py` finds it
#   site-packages/00_vode_ros_env.pth
#                               puts those prefixes on AMENT_PREFIX_PATH (and the interfaces on
#                               the Python and library paths) whenever the venv's Python starts
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY_BIN="${PYTHON:-python3.11}"
command -v "$PY_BIN" >/dev/null || PY_BIN=python3
STAMP="$VENV/.vode_setup_ok"
# ONNX Runtime for this machine (GPU or CPU build): part of the inputs, so that moving the venv
# to a machine with another answer (or setting VODE_ORT) re-runs the install.
ORT_REQS="$(bash "$ROOT/scripts/onnxruntime_choice.sh")" || exit 1
# The stamp records the inputs; any change to them re-runs the install.
INPUTS_HASH="$( { cat "$ROOT/scripts/setup.sh" "$ROOT/scripts/requirements.txt" "$ROOT/scripts/requirements-ros.txt" \
  "$ROOT/scripts/onnxruntime_choice.sh" "$ROOT/scripts/build_interfaces.py" "$ROOT/scripts/register_package.py" \
  "$ROOT/setup.py" "$ROOT"/msg/*.msg; echo "$ORT_REQS"; } | sha1sum | cut -c1-12)"
# The package's ament index entry (a fraction of a second to write): written again when it or a
# launch file's link is missing, e.g. after a new launch file, without the rest of the set-up.
register() { "$VENV/bin/python" "$ROOT/scripts/register_package.py" --venv "$VENV" --repo "$ROOT"; }
registered() {
  local share="$VENV/ros_ws/install/vode_ros/share" f
  [[ -e "$share/ament_index/resource_index/packages/vode_ros" && -x "$VENV/ros_ws/install/vode_ros/lib/vode_ros/depth_node" ]] \
    || return 1
  for f in "$ROOT"/launch/*.launch.py; do [[ -e "$share/vode_ros/launch/${f##*/}" ]] || return 1; done
}
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$INPUTS_HASH" ]]; then
  registered || register
  exit 0
fi

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
[[ -x "$VENV/bin/python" ]] || { log "creating venv with $PY_BIN"; "$PY_BIN" -m venv "$VENV"; }
# This machine kind's pip config names local wheel folders that may not exist: hide that noise.
pip_quiet() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; return "${PIPESTATUS[0]}"; }
PIP=(pip_quiet)
# colcon-core needs setuptools < 80.
"${PIP[@]}" install --upgrade pip wheel "setuptools<80"

HAVE_SYSTEM_ROS=0
if [[ -n "${ROS_DISTRO:-}" ]] && python3 -c 'import rclpy' 2>/dev/null; then
  HAVE_SYSTEM_ROS=1
  log "using the sourced ROS 2 $ROS_DISTRO install"
fi

log "installing Python packages (torch==2.13.0 CPU, onnx, rosbags, ...)"
"${PIP[@]}" install -r "$ROOT/scripts/requirements.txt"
# onnxruntime and onnxruntime-gpu install the same `onnxruntime` module: one flavour at a time.
if grep -q '^onnxruntime-gpu' <<<"$ORT_REQS"; then ORT_OTHER=onnxruntime; else ORT_OTHER=onnxruntime-gpu; fi
if "$VENV/bin/python" -m pip --disable-pip-version-check show -q "$ORT_OTHER" >/dev/null 2>&1; then
  log "replacing $ORT_OTHER (the other ONNX Runtime build)"
  "${PIP[@]}" uninstall -y onnxruntime onnxruntime-gpu
fi
log "installing ONNX Runtime: $(tr '\n' ' ' <<<"$ORT_REQS")"
mapfile -t ORT_ARGS <<<"$ORT_REQS"
"${PIP[@]}" install "${ORT_ARGS[@]}"
if [[ $HAVE_SYSTEM_ROS == 0 ]]; then
  log "installing ROS 2 Kilted wheels (rclpy + Fast DDS + messages + rosidl build tools)"
  "${PIP[@]}" install -r "$ROOT/scripts/requirements-ros.txt"
  # The ROS wheels pull the old lark-parser, which shadows lark (needed by rosidl).
  "${PIP[@]}" install --force-reinstall --no-deps lark
fi
"${PIP[@]}" install --no-deps -e "$ROOT"

if [[ $HAVE_SYSTEM_ROS == 0 ]]; then
  "$VENV/bin/python" "$ROOT/scripts/build_interfaces.py" --venv "$VENV" --repo "$ROOT"
fi
register
echo "$INPUTS_HASH" > "$STAMP"
log "done"
