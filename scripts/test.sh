#!/usr/bin/env bash
# Tests: set up (idempotent), then pytest. pytest's "no tests collected" (exit 5) is a failure.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" || exit 1
# Where the shared tools sit beside the checkout (CI), install real ROS 2 launch + the ros2 CLI
# into the venv, so the real-launch tests (test/launch/) run rather than skip. Idempotent: a
# second run finds its stamp and returns at once.
LAUNCH_TOOL="$ROOT/../shared/tools/ros2-launch/install.sh"
if [[ -f "$LAUNCH_TOOL" ]]; then
  bash "$LAUNCH_TOOL" "$ROOT/.venv" || { echo "installing ROS 2 launch ($LAUNCH_TOOL) failed" >&2; exit 1; }
fi
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
cd "$ROOT"
# Lint first (ruff.toml): a syntax slip or an unused import fails in a second, not after the suite.
if ! "$ROOT/.venv/bin/python" -m ruff --version >/dev/null 2>&1; then
  "$ROOT/.venv/bin/python" -m pip install -q "$(grep -E '^ruff' "$ROOT/scripts/requirements.txt")" || exit 1
fi
"$ROOT/.venv/bin/python" -m ruff check "$ROOT" || exit 1
"$ROOT/.venv/bin/python" -m pytest "$@"
rc=$?
if [[ $rc == 5 ]]; then
  echo "pytest collected no tests: treating as failure" >&2
  exit 1
fi
exit $rc
