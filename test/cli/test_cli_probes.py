"""Every `vode` verb with a missing, unreadable, unwritable, empty or malformed argument: a non-zero exit
and one line naming the problem and the way out, before any work starts; no traceback, nothing written.

PROBES is also the table "What was tried" of docs/reliability.md (scripts/reliability_table.py reads it):
(case as a user would type it, the argv after `vode` with FILE / DIR / RO placeholders, what the last
line of stderr holds).
"""
from __future__ import annotations

import time

import pytest

from vode_ros.cli import main as vode_cli

RO = "/sys/vode_probe"          # a path nobody can create (sysfs refuses new files, also to root)

PROBES = [
    ("`vode demo --out /sys/x` (read-only place)", ["demo", "--out", RO], "/sys is not writable"),
    ("`vode demo --out FILE/x` (a file on the way)", ["demo", "--out", "FILE/x"], "is a file, so nothing can be created"),
    ("`vode demo --out FILE` (a file where a folder goes)", ["demo", "--out", "FILE"], "is a file, not a folder"),
    ("`vode demo --data DIR` (an empty folder)", ["demo", "--data", "DIR", "--out", "OUT"], "no image_0/"),
    ("`vode demo --rate -1`", ["demo", "--rate", "-1"], "argument --rate: must be 0 or more"),
    ("`vode run --image-topic 'bad topic!'`", ["run", "--image-topic", "bad topic!"],
     "'bad topic!' is not a valid ROS 2 topic name"),
    ("`vode run --camera-info-topic ''`", ["run", "--camera-info-topic", ""], "give a topic name"),
    ("`vode run --namespace 'bad ns!'`", ["run", "--namespace", "bad ns!"], "is not a valid ROS 2 namespace"),
    ("`vode run --nodes ''`", ["run", "--nodes", ""], "no node; give a comma list of depth, odometry"),
    ("`vode run --rate -1` / `--rate nan`", ["run", "--rate", "-1", "--bag", "DIR"], "--rate must be 0"),
    ("`vode run --params FILE` (an empty file)", ["run", "--params", "FILE"], "expected a mapping of node names"),
    ("`vode run --params MISSING`", ["run", "--params", "MISSING"], "parameter file not found"),
    ("`vode bag from-kitti DIR /sys/x`", ["bag", "from-kitti", "DIR", RO], "/sys is not writable"),
    ("`vode bag from-kitti MISSING OUT`", ["bag", "from-kitti", "MISSING", "OUT"], "no such folder"),
    ("`vode bag from-kitti ... --stamp-offset nan`", ["bag", "from-kitti", "DIR", "OUT", "--stamp-offset", "nan"],
     "argument --stamp-offset: must be a finite number"),
    ("`vode bag from-kitti ... --max-frames 0`", ["bag", "from-kitti", "DIR", "OUT", "--max-frames", "0"],
     "--max-frames must be at least 1"),
    ("`vode bag info FILE` (an empty file)", ["bag", "info", "FILE"], "cannot read"),
    ("`vode bag info DIR` (an empty folder)", ["bag", "info", "DIR"], "no metadata.yaml"),
    ("`vode bag play MISSING`", ["bag", "play", "MISSING"], "no such bag"),
    ("`vode bag play B --rate nan`", ["bag", "play", "DIR", "--rate", "nan"], "--rate must be 0"),
    ("`vode bag play B --wait-timeout 0`", ["bag", "play", "DIR", "--wait-timeout", "0"], "--wait-timeout must be"),
    ("`vode bag record /sys/x --topics /a`", ["bag", "record", RO, "--topics", "/a"], "/sys is not writable"),
    ("`vode bag record OUT --topics 'bad topic!'`", ["bag", "record", "OUT", "--topics", "bad topic!"],
     "is not a valid ROS 2 topic name"),
    ("`vode bag record OUT --duration -1`", ["bag", "record", "OUT", "--topics", "/a", "--duration", "-1"],
     "argument --duration: must be 0 or more"),
    ("`vode bag record OUT --discovery-timeout 0`", ["bag", "record", "OUT", "--topics", "/a",
                                                     "--discovery-timeout", "0"], "must be more than 0"),
    ("`vode eval depth --data DIR` (an empty folder)", ["eval", "depth", "--data", "DIR"], "no image_0/"),
    ("`vode eval depth --stride 0`", ["eval", "depth", "--data", "DIR", "--stride", "0"], "must be 1 or more"),
    ("`vode eval depth --max-frames 0`", ["eval", "depth", "--data", "DIR", "--max-frames", "0"], "must be 1 or more"),
    ("`vode eval depth --plots FILE`", ["eval", "depth", "--data", "DIR", "--plots", "FILE"], "is a file, not a folder"),
    ("`vode eval pose --json /sys/p.json` (before the evaluation runs)",
     ["eval", "pose", "--data", "DIR", "--json", RO + "/p.json"], "/sys is not writable"),
    ("`vode eval pose --json DIR` (a folder where a file goes)", ["eval", "pose", "--data", "DIR", "--json", "DIR"],
     "is a folder; give a file name in it"),
    ("`vode eval pose --first-frame -1`", ["eval", "pose", "--data", "DIR", "--first-frame", "-1"],
     "must be 0 or more"),
    ("`vode eval pose --length-smoothing 1`", ["eval", "pose", "--data", "DIR", "--length-smoothing", "1"],
     "must be 0.999 or less"),
    ("`vode export --out /sys/x`", ["export", "--checkpoint", "FILE", "--out", RO], "/sys is not writable"),
    ("`vode export --out FILE/x`", ["export", "--checkpoint", "FILE", "--out", "FILE/x"], "is a file, so nothing"),
    ("`vode train --out /sys/x`", ["train", "--out", RO], "/sys is not writable"),
    ("`vode synth /sys/x`", ["synth", RO], "/sys is not writable"),
    ("`vode synth OUT --frames 0` / `--baseline -1` / `--speed nan`", ["synth", "OUT", "--baseline", "-1"],
     "argument --baseline: must be more than 0"),
    ("`vode bench --json /sys/b.json`", ["bench", "--json", RO + "/b.json"], "/sys is not writable"),
    ("`vode bench --data DIR` (an empty folder)", ["bench", "--data", "DIR"], "no image_0/"),
    ("`vode bench soak --minutes 0` / `--rate 0`", ["bench", "soak", "--rate", "0"], "must be more than 0"),
    ("`vode bench train --json FILE/x`", ["bench", "train", "--json", "FILE/x"], "is a file, so nothing"),
    ("`vode compare --out /sys/x`", ["compare", "--out", RO], "/sys is not writable"),
]


def _vode(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = vode_cli.main(argv)
    except SystemExit as exc:          # argparse refuses a malformed value with exit 2
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case, argv, expected", PROBES, ids=[p[0] for p in PROBES])
def test_a_bad_argument_is_one_line_before_any_work(case, argv, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("")
    (tmp_path / "DIR").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [str(tmp_path / a) if a in ("FILE", "DIR", "MISSING", "OUT") or a.startswith("FILE/") else a for a in argv]
    t0 = time.monotonic()
    code, err = _vode(argv, capsys)
    assert code not in (0, None), (case, err)
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert expected in last, (case, err)
    assert time.monotonic() - t0 < 30.0, f"{case}: refused only after {time.monotonic() - t0:.0f} s of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == before, f"{case} left files behind"


def _outputs(parser, prefix: str = ""):
    """(verb, dest) of every option of every verb that names something written."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _outputs(sub, f"{prefix} {name}".strip())
        elif action.dest in ("out", "json", "plots", "keep"):
            yield prefix, action.dest, parser.get_default("vode_outputs") or ()


def test_every_output_option_is_checked_before_the_verb_runs():
    found = list(_outputs(vode_cli.build_parser()))
    assert len(found) >= 12, found
    unchecked = [f"vode {verb} {dest}" for verb, dest, declared in found if dest not in {d for d, _, _ in declared}]
    assert not unchecked, f"outputs not declared with cli.output_paths.declare_outputs: {unchecked}"
