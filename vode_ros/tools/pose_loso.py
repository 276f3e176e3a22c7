"""Leave-one-sequence-out choice of an odometry setting, and the table of held-out figures beside
the classical baseline.

    python -m vode_ros.tools.pose_loso auto=bench_auto.json lk=bench_lk.json descriptor=bench_descriptor.json
        [--markdown OUT.md]

Each NAME=FILE[,FILE...] is a ``pose_bench --json`` run with one value of the setting (the same
sequences, strides and modes, in one file or several); the first that holds ``classical`` rows
gives the baseline. For every sequence the value is chosen on the *other* sequences: the one with
the lowest mean, over their (stride, mode) rows, of

    (log(ATE-5 / ATE-5 of the baseline) + log(end drift / end drift of the baseline)) / 2,

ratios to the baseline so that a long drive and a desk count alike; the sequence's own figures
are then those of the value chosen without it. The table gives, per sequence x stride x mode,
ours (held-out choice) against the baseline: ATE-5, end drift, path length error.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from vode_ros.core.atomic_file import atomic_write


def _key(row: dict) -> tuple:
    return row["sequence"], int(row.get("stride", 1)), row["mode"]


def load_runs(specs: list[str]) -> tuple[dict[str, dict[tuple, dict]], dict[tuple, dict], list[str]]:
    """NAME=FILE specs -> ({name: {key: our row}}, {key: baseline row}, names in order)."""
    runs: dict[str, dict[tuple, dict]] = {}
    baseline: dict[tuple, dict] = {}
    names = []
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not name or not file:
            raise ValueError(f"expected NAME=FILE, got {spec!r}")
        rows = [r for f in file.split(",") for r in json.loads(Path(f).read_text())["rows"]]
        runs[name] = {_key(r): r for r in rows if r["source"] != "classical"}
        names.append(name)
        if not baseline:
            baseline = {_key(r): r for r in rows if r["source"] == "classical"}
    if not baseline:
        raise ValueError("no run holds classical rows: run pose_bench without --no-baseline once")
    return runs, baseline, names


def _log_ratio(a: float, b: float) -> float:
    if not (a is not None and b is not None and math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
        return math.log(10.0)                 # a failed figure counts as ten times the baseline's
    return math.log(a / b)


def row_score(ours: dict, base: dict) -> float:
    return 0.5 * (_log_ratio(ours["ate5"], base["ate5"]) + _log_ratio(ours["end_drift_pct"], base["end_drift_pct"]))


def choose_held_out(runs: dict[str, dict[tuple, dict]], baseline: dict[tuple, dict], names: list[str]
                    ) -> dict[str, str]:
    """{sequence: the value chosen on the other sequences}."""
    keys = [k for k in baseline if all(k in runs[n] for n in names)]
    sequences = sorted({k[0] for k in keys})
    chosen = {}
    for held in sequences:
        totals = {}
        for n in names:
            scores = [row_score(runs[n][k], baseline[k]) for k in keys if k[0] != held]
            totals[n] = sum(scores) / len(scores) if scores else 0.0
        chosen[held] = min(names, key=lambda n: (totals[n], names.index(n)))
    return chosen


def _f(x, nd: int, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:+.{nd}f}" if sign else f"{x:.{nd}f}"


def table(runs, baseline, names, chosen) -> str:
    lines = ["| sequence | stride | mode | frames | chosen on the others | ATE-5 ours / baseline (m) "
             "| end drift ours / baseline (%) | path error ours / baseline (%) | ours no worse |",
             "|---|---|---|---|---|---|---|---|---|"]
    counts = defaultdict(int)
    for key in sorted(baseline):
        seq = key[0]
        if seq not in chosen or key not in runs[chosen[seq]]:
            continue
        o, b = runs[chosen[seq]][key], baseline[key]
        ok = o["ate5"] <= b["ate5"] and o["end_drift_pct"] <= b["end_drift_pct"]
        counts[ok] += 1
        lines.append(f"| {seq} | {key[1]} | {key[2]} | {o['frames']} | {chosen[seq]} | {_f(o['ate5'], 4)} / "
                     f"{_f(b['ate5'], 4)} | {_f(o['end_drift_pct'], 2)} / {_f(b['end_drift_pct'], 2)} | "
                     f"{_f(o.get('path_err_pct'), 1, True)} / {_f(b.get('path_err_pct'), 1, True)} | "
                     f"{'yes' if ok else '**no**'} |")
    lines.append("")
    lines.append(f"Ours no worse than the baseline on both ATE-5 and end drift: {counts[True]} of "
                 f"{counts[True] + counts[False]} rows.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vode_ros.tools.pose_loso", description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="NAME=FILE: a pose_bench --json run per value of the setting")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = ap.parse_args(argv)
    try:
        runs, baseline, names = load_runs(args.runs)
    except (OSError, ValueError, KeyError) as exc:
        print(f"pose_loso: {exc}", file=sys.stderr)
        return 2
    chosen = choose_held_out(runs, baseline, names)
    text = ("Chosen for each sequence on the others: "
            + ", ".join(f"{s}: {c}" for s, c in chosen.items()) + "\n\n" + table(runs, baseline, names, chosen))
    print(text)
    if args.markdown is not None:
        with atomic_write(args.markdown) as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
