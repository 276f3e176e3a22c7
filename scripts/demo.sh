#!/usr/bin/env bash
# Main job: set up (idempotent), then the embedded KITTI clip through the real ROS 2 nodes.
# Extra arguments go to `vode demo` (e.g. --data DIR --out DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
exec "$ROOT/.venv/bin/vode" demo "$@"
