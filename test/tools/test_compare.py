"""vode_ros.tools.compare: split files, data root, the budget check on resume, and a stage resumed
from its checkpoint through the real training, export and scoring (one method, 2 steps, 128x64)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from compare_helpers import make_split

from vode_ros.tools import compare as cmp


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> tuple[Path, Path]:
    return make_split(tmp_path_factory.mktemp("split"))


def tiny(data: Path, splits: Path, steps: int = 2) -> cmp.Settings:
    return cmp.Settings.from_split("tiny", data, splits, steps=steps, width=128, height=64, batch=2,
                                   max_frames=8, threads=1)


def test_settings_from_split(split):
    data, splits = split
    s = tiny(data, splits)
    assert (s.train, s.heldout, s.stereo_train) == (["seq_a", "seq_b"], ["seq_c"], ["seq_a"])
    assert Path(s.data_root) == data.resolve()


def test_missing_split_and_folder_errors(split, tmp_path):
    data, splits = split
    with pytest.raises(cmp.CompareError, match=r"nope_train\.txt not found.*--split"):
        cmp.Settings.from_split("nope", data, splits)
    with pytest.raises(cmp.CompareError, match=r"has no folder seq_a .*tiny_train\.txt.*--data-root"):
        cmp.Settings.from_split("tiny", tmp_path, splits)
    with pytest.raises(cmp.CompareError, match=r"data root .*missing not found: pass --data-root"):
        cmp.Settings.from_split("tiny", tmp_path / "missing", splits)
    (tmp_path / "x_train.txt").write_text("seq_a\nseq_c\n")
    (tmp_path / "x_heldout.txt").write_text("seq_c\n")
    with pytest.raises(cmp.CompareError, match="must not be trained on"):
        cmp.Settings.from_split("x", data, tmp_path)


def test_out_folder_checks(split, tmp_path):
    data, splits = split
    s = tiny(data, splits)
    (tmp_path / "lkvo" / "stage1").mkdir(parents=True)
    with pytest.raises(cmp.CompareError, match="earlier compare.*--resume"):
        cmp.compare(s, tmp_path, ("lkvo",), resume=False)
    (tmp_path / "settings.json").write_text(json.dumps(dataclasses.replace(s, steps=5).key()))
    with pytest.raises(cmp.CompareError, match=r"different budget or split \(steps differ"):
        cmp.compare(s, tmp_path, ("lkvo",), resume=True)
    with pytest.raises(cmp.CompareError, match="no config/train/nomethod.yaml"):
        cmp.compare(s, tmp_path, ("nomethod",), resume=True)


@pytest.mark.slow
def test_resume_continues_a_stage_from_its_checkpoint(split, tmp_path, capsys):
    """An interrupted stage (checkpoint at step 1 of 2) continues from step 1, then is scored."""
    data, splits = split
    s = tiny(data, splits)
    cmp.train_stages("sfmlearner", dataclasses.replace(s, steps=1), tmp_path / "sfmlearner", progress=False)
    capsys.readouterr()
    report = cmp.compare(s, tmp_path, ("sfmlearner",), resume=True, progress=False)
    printed = capsys.readouterr().out
    assert "step 2/2" in printed and "step 1/2" not in printed      # resumed, not restarted
    state = json.loads((tmp_path / "sfmlearner" / "state.json").read_text())
    assert state["stage1"]["steps"] == 2 and state["stage1"]["folders"] == ["seq_a"]
    (row,) = report["methods"]
    assert row["steps"] == [2] and row["metric"] and row["train_folders"] == ["seq_a"]
    (h,) = row["heldout"]
    assert h["sequence"] == "seq_c" and h["depth_gt"] == "npy"
    for key in ("abs_rel", "a1", "metric_abs_rel", "constant_abs_rel", "ate5_mean", "end_drift_pct",
                "depth_scale_error", "path_scale_error"):
        assert isinstance(h[key], float), key
