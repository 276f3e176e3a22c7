"""vode_ros.tools.pose_bench end to end on a small synthetic KITTI-layout folder (stereo, geometric
source: no model needed): it finds the sequence, scores it and writes the JSON and the table."""
from __future__ import annotations

import json

from vode_ros.tools.pose_bench import find_sequences, main
from vode_training.data.synthetic import write_kitti_layout


def test_pose_bench_on_a_synthetic_folder(tmp_path, capsys):
    write_kitti_layout(tmp_path / "synth_seq", frames=8, width=320, height=96, seed=2)
    (tmp_path / "not_a_sequence").mkdir()
    assert [p.name for p in find_sequences(tmp_path)] == ["synth_seq"]
    out = tmp_path / "bench.json"
    assert main(["--data", str(tmp_path), "--sources", "geometric", "--modes", "stereo", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 1 and rows[0]["source"] == "geometric" and rows[0]["frames"] == 8
    r = rows[0]
    assert r["ate5"] < 0.05 and r["end_drift_pct"] < 10 and r["fps"] > 0
    assert "| synth_seq | stereo | geometric | 8 |" in capsys.readouterr().out


def test_first_frame_and_camera_height_reach_the_rows(tmp_path, capsys, models_dir):
    write_kitti_layout(tmp_path / "synth_seq", frames=9, width=320, height=96, seed=3)
    out = tmp_path / "bench.json"
    assert main(["--data", str(tmp_path), "--sources", "geometric", "--modes", "mono", "--first-frame", "2",
                 "--camera-height", "1.5", "--models-dir", str(models_dir), "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["frames"] == 7 and row["first_frame"] == 2 and row["mode"] == "mono+camera_height+essential+speed0.7"
    assert "| synth_seq from frame 2 | mono+camera_height+essential+speed0.7 | geometric | 7 |" in capsys.readouterr().out
