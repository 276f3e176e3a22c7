"""Leave-one-sequence-out choice: each sequence's figure comes from the value chosen on the others."""
from __future__ import annotations

import json

from vode_ros.tools.pose_loso import main


def _row(seq, source, ate5, drift, stride=1):
    return {"sequence": seq, "stride": stride, "mode": "stereo", "source": source, "frames": 10, "ate5": ate5,
            "end_drift_pct": drift, "path_err_pct": 1.0}


def test_each_sequence_gets_the_choice_of_the_others(tmp_path, capsys):
    # "a" is better on x and y, "b" much better on z: z is scored with a (chosen on x and y), x with b
    # (on y and z, b's gain on z outweighs a's on y), y likewise.
    runs = {"a": [_row("x", "hybrid", 0.01, 1.0), _row("y", "hybrid", 0.01, 1.0), _row("z", "hybrid", 0.05, 5.0)],
            "b": [_row("x", "hybrid", 0.02, 2.0), _row("y", "hybrid", 0.02, 2.0), _row("z", "hybrid", 0.01, 1.0)]}
    base = [_row(s, "classical", 0.02, 2.0) for s in "xyz"]
    files = []
    for name, rows in runs.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"rows": rows + (base if name == "a" else [])}))
        files.append(f"{name}={path}")
    out = tmp_path / "table.md"
    assert main([*files, "--markdown", str(out)]) == 0
    text = out.read_text()
    assert "x: b, y: b, z: a" in text                     # z's own preference for b is not used
    assert "| z | 1 | stereo | 10 | a | 0.0500 / 0.0200 |" in text and "**no**" in text
    assert "2 of 3 rows" in text


def test_missing_baseline_is_said(tmp_path, capsys):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"rows": [_row("x", "hybrid", 0.01, 1.0)]}))
    assert main([f"a={path}"]) == 2
    assert "no run holds classical rows" in capsys.readouterr().err
