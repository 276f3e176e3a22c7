"""vode_ros.tools.pose_bench end to end on a small synthetic KITTI-layout folder (stereo, geometric
source: no model needed): it finds the sequence, scores it and writes the JSON and the table."""
from __future__ import annotations

import json

import pytest

from vode_ros.tools.pose_bench import find_sequences, main
from vode_training.data.synthetic import write_kitti_layout


def test_pose_bench_on_a_synthetic_folder(tmp_path, capsys):
    write_kitti_layout(tmp_path / "synth_seq", frames=8, width=320, height=96, seed=2)
    (tmp_path / "not_a_sequence").mkdir()
    assert [p.name for p in find_sequences(tmp_path)] == ["synth_seq"]
    out = tmp_path / "bench.json"
    assert main(["--data", str(tmp_path), "--sources", "geometric", "--modes", "stereo", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["source"] for r in rows] == ["geometric", "classical"] and rows[0]["frames"] == 8
    r = rows[0]
    assert r["ate5"] < 0.05 and r["end_drift_pct"] < 10 and r["fps"] > 0 and abs(r["path_err_pct"]) < 10
    assert rows[1]["fps"] > 0 and rows[1]["ate5"] > 0            # the classical odometry beside it, same frames
    assert "| synth_seq | 1 | stereo | geometric | 8 |" in capsys.readouterr().out


def test_strides_keep_every_kth_frame_and_its_stamp(tmp_path, capsys):
    write_kitti_layout(tmp_path / "synth_seq", frames=10, width=320, height=96, seed=2)
    out = tmp_path / "bench.json"
    assert main(["--data", str(tmp_path), "--sources", "geometric", "--modes", "stereo", "--strides", "1,2",
                 "--no-baseline", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["stride"], r["frames"]) for r in rows] == [(1, 10), (2, 5)]
    # frames 0, 2, .., 8 of 0..9: the ground truth of the same way, without its last metre
    assert rows[1]["path_m"] == pytest.approx(rows[0]["path_m"] * 8 / 9, rel=0.02)
    assert "| synth_seq | 2 | stereo | geometric | 5 |" in capsys.readouterr().out


def test_bad_strides_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--strides", "0,x"])
    assert "--strides must be" in capsys.readouterr().err


def test_first_frame_and_camera_height_reach_the_rows(tmp_path, capsys, models_dir):
    write_kitti_layout(tmp_path / "synth_seq", frames=9, width=320, height=96, seed=3)
    out = tmp_path / "bench.json"
    assert main(["--data", str(tmp_path), "--sources", "geometric", "--modes", "mono", "--first-frame", "2",
                 "--camera-height", "1.5", "--models-dir", str(models_dir), "--json", str(out), "--no-baseline"]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["frames"] == 7 and row["first_frame"] == 2 and row["mode"] == "mono+camera_height+essential+speed0.7"
    assert "| synth_seq from frame 2 | 1 | mono+camera_height+essential+speed0.7 | geometric | 7 |" in capsys.readouterr().out
