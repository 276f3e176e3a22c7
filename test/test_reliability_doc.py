"""docs/reliability.md is generated from the reliability tests and kept up to date."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_reliability_table_is_up_to_date():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "reliability_table.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
