"""`vode bag from-kitti` on damaged KITTI text files: one line naming the file, the line and the way out,
exit 2, no bag written.

Each test's docstring is a row of docs/reliability.md (scripts/reliability_table.py).
"""
from __future__ import annotations

import shutil

import pytest

from vode_ros.cli import main as vode_cli

pytestmark = pytest.mark.needs_data


@pytest.fixture
def clip_copy(kitti_dir, tmp_path):
    """The clip with its text files copied (to damage) and its image folders linked."""
    copy = tmp_path / "clip"
    copy.mkdir()
    for name in ("image_0", "image_1"):
        if (kitti_dir / name).is_dir():
            (copy / name).symlink_to(kitti_dir / name)
    for name in ("calib.txt", "times.txt", "poses.txt"):
        shutil.copy(kitti_dir / name, copy / name)
    return copy


def _edit_line(path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


DAMAGE = {
    "short_pose_line": ("poses.txt", 5, lambda old: " ".join(old.split()[:4]),
                        "poses.txt line 5: 4 numbers, expected 12"),
    "nan_time": ("times.txt", 7, lambda old: "nan", "times.txt line 7: 'nan' is not finite"),
    "word_in_poses": ("poses.txt", 3, lambda old: old.replace(old.split()[2], "abc", 1), "'abc' is not a number"),
    "time_goes_back": ("times.txt", 12, lambda old: "0.1", "times.txt line 12: 0.100000 s does not come after "
                                                         "line 11"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_times_and_poses_name_the_file_and_line(clip_copy, tmp_path, capsys, damage):
    """`vode bag from-kitti` on a copy of the clip with a short poses.txt line, a word in it, NaN in times.txt,
    or a time that goes backwards | exit 2 with one line naming the file, the line and what is wrong ("fix the
    line"; numpy's "number of columns changed" or "cannot convert float NaN to integer" before); no bag
    """
    name, number, change, expected = DAMAGE[damage]
    path = clip_copy / name
    _edit_line(path, number, change(path.read_text().splitlines()[number - 1]))
    out = tmp_path / "bag"
    code = vode_cli.main(["bag", "from-kitti", str(clip_copy), str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err and str(path) in err and "fix" in err.lower(), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".bag*"))
