"""A verb that needs torch, where it is not installed: one line naming what is missing and the way out."""
from __future__ import annotations

from vode_ros.cli.missing_extras import training_extras_missing


def test_one_line_with_the_way_out(capsys):
    assert training_extras_missing("vode train", ImportError("No module named 'torch'")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err == ("vode train: the training extras are not installed (No module named 'torch'); "
                   "pip install -r scripts/requirements.txt")
