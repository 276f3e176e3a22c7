"""The report of one ``vode adapt``: report.json (split, budget, scale source, scores before and
after, forgetting, the guard's verdict) and report.png (held-out depth before/after beside the
reference, trajectories)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vode_ros.core.atomic_file import atomic_write


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(report: dict[str, Any], path: Path) -> Path:
    with atomic_write(path) as fh:
        json.dump(_plain(report), fh, indent=2)
        fh.write("\n")
    return path


def headline(report: dict[str, Any]) -> str:
    b, a = report["before"], report["after"]
    parts = [f"photometric {b['photometric']:.4f} -> {a['photometric']:.4f}"]
    if "depth_abs_rel" in b and "depth_abs_rel" in a:
        parts.append(f"depth Abs Rel vs {report['depth_reference']} {b['depth_abs_rel']:.3f} -> {a['depth_abs_rel']:.3f} "
                     f"(median-scaled; constant {a['constant_abs_rel']:.3f})")
    if "pose_ate5" in b and "pose_ate5" in a:
        parts.append(f"mono odometry ATE-5 {b['pose_ate5']:.4f} -> {a['pose_ate5']:.4f} m")
    verdict = "installed" if report["installed"] else "not installed"
    return f"{verdict}: " + ", ".join(parts)


def write_figure(path: Path, held_seq, before_extras: dict, after_extras: dict, references: list,
                 report: dict[str, Any]) -> Path:
    from vode_ros.tools.plots import plot_adaptation

    picks = sorted(after_extras["samples"])
    images = [held_seq.left[i] for i in picks]
    refs = [references[i] if references else None for i in picks]
    trajectories = None
    if "trajectory_gt" in after_extras:
        trajectories = {"reference (bag odometry)": after_extras["trajectory_gt"],
                        "mono odometry before": before_extras["trajectory"],
                        "mono odometry after": after_extras["trajectory"]}
    return plot_adaptation(images, [before_extras["samples"][i] for i in picks],
                           [after_extras["samples"][i] for i in picks], refs, path, headline(report), trajectories)
