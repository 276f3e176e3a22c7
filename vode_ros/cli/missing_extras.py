"""The one message of a verb that needs the training extras (torch) where they are not installed."""
from __future__ import annotations

import sys

EXIT_CODE = 2


def training_extras_missing(verb: str, exc: ImportError) -> int:
    """Say that ``verb`` needs the training extras, and how to get them; returns the exit status.

    The run time (nodes, vode run, vode eval) works without torch, so its absence is a choice of
    install, not a fault: one line, no traceback."""
    print(f"{verb}: the training extras are not installed ({exc}); pip install -r scripts/requirements.txt",
          file=sys.stderr)
    return EXIT_CODE
