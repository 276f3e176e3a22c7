"""`vode train` / `vode export` on damaged input: one line naming the file, no traceback, and
no run folder left behind."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vode_ros.bag.kitti_to_bag import convert

pytestmark = pytest.mark.slow     # imports torch


def _vode(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vode_ros.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_train_on_a_truncated_bag_names_it_and_leaves_no_run_folder(kitti_dir, tmp_path):
    """`vode train --bag` on a truncated .mcap | one line naming the bag ("damaged, truncated"), exit 1, no
    traceback, no run folder left
    """
    bag = Path(convert(kitti_dir, tmp_path / "good", progress=False, max_frames=5)["out_path"])
    cut = tmp_path / "cut"
    shutil.copytree(bag, cut)
    (mcap,) = cut.glob("*.mcap")
    mcap.write_bytes(mcap.read_bytes()[:100_000])
    run = tmp_path / "run"
    r = _vode("train", "--bag", str(cut), "--image-topic", "/camera/left/image_raw", "--out", str(run),
              "--no-progress", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "damaged, truncated" in r.stderr and str(cut) in r.stderr and "Traceback" not in r.stderr
    assert not run.exists()


@pytest.mark.parametrize("content", [b"not a checkpoint", b"\x80\x04\x95"], ids=["garbage", "cut_pickle"])
def test_export_and_resume_on_a_corrupt_checkpoint_name_it(tmp_path, content):
    """`vode export` / `vode train --resume` on a corrupt checkpoint | one line naming the file ("not a readable
    checkpoint"), no traceback; the run folder of a failed resume is not created
    """
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(content)
    r = _vode("export", "--checkpoint", str(bad), "--out", str(tmp_path / "models"), cwd=tmp_path)
    assert r.returncode == 2 and "not a readable checkpoint" in r.stderr and str(bad) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "models").exists()
    run = tmp_path / "run"
    repo = Path(__file__).resolve().parents[2]        # the config names the clip relative to the repository
    r = _vode("train", "--config", "config/train/sfmlearner.yaml", "--resume", str(bad), "--out", str(run),
              "--no-progress", cwd=repo)
    assert r.returncode == 1 and "not a readable checkpoint" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not run.exists()


@pytest.mark.parametrize("damage", ["missing", "bad_metadata"])
def test_run_on_a_missing_or_damaged_bag_names_it_before_any_node_starts(tmp_path, damage):
    """`vode run --bag` on a missing folder or a bag with unreadable metadata.yaml | one line naming the bag
    and what to do, exit 2, no traceback, no node started
    """
    bag = tmp_path / "bag"
    if damage == "bad_metadata":
        bag.mkdir()
        (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [\n")
    r = _vode("run", "--bag", str(bag), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert str(bag) in r.stderr and "Traceback" not in r.stderr
    assert ("no such bag" if damage == "missing" else "damaged, truncated") in r.stderr
    assert "runs on" not in r.stderr      # no model loaded, no node started


@pytest.mark.parametrize("text, says", [("x: [\n", "not readable YAML"),
                                        ("depth_node:\n  threads: 1\n", "no 'ros__parameters:'")],
                         ids=["broken_yaml", "no_ros__parameters"])
def test_run_with_a_bad_parameter_file_names_it(tmp_path, text, says):
    """`vode run --params` with broken YAML or without `ros__parameters:` | one line naming the file and what
    is wrong, exit 2, no traceback (rcl's parser would abort rclpy.init with a line number only)
    """
    params = tmp_path / "params.yaml"
    params.write_text(text)
    r = _vode("run", "--params", str(params), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(params) in r.stderr and says in r.stderr and "Traceback" not in r.stderr


def test_a_namespaced_parameter_file_is_accepted():
    from vode_ros.nodes.runner import DEFAULT_PARAMS, params_file_problem

    assert params_file_problem(DEFAULT_PARAMS) is None


def test_vode_run_names_an_unknown_node_on_stderr(capsys):
    from vode_ros.cli.main import main

    assert main(["run", "--nodes", "depth,lidar"]) == 2
    assert "unknown node(s) ['lidar']" in capsys.readouterr().err
