"""`vode demo --adapt`: the adaptation on a shipped clip, before and after, in a few minutes.

The clip (a KITTI-layout folder) becomes a rosbag2 as in ``vode demo``; ``vode adapt`` then
fine-tunes the shipped model on its first 80 % (stereo: metric scale), judges it on the last
20 % and writes ``<out>/adapted/<clip>/`` (model, report.json, report.png: depth before/after on
the held-out frames beside the SGBM reference, trajectories vs the clip's ground truth). The
shipped models/ are not touched.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


def run_adapt_demo(data_dir: Path, out_dir: Path, minutes: float = 3.0, others: list[str] | None = None,
                   log: Callable[[str], None] = print, progress: bool = True, init: str = "",
                   **options: Any) -> dict[str, Any]:
    """-> the adaptation report; ``init`` / ``options``: AdaptOptions fields (the shipped model by default)."""
    from vode_ros.bag.kitti_to_bag import convert

    from .offline import AdaptOptions, adapt_bag

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    bag = out_dir / "bags" / f"{data_dir.name}_adapt"
    log(f"[1/2] {data_dir} -> rosbag2 {bag}")
    convert(data_dir, bag, progress=False, overwrite=True)
    log(f"[2/2] vode adapt --bag {bag} --minutes {minutes:g} --out {out_dir / 'adapted'}")
    return adapt_bag(AdaptOptions(bag=str(bag), minutes=minutes, out=str(out_dir / "adapted"), name=data_dir.name,
                                  other=list(others or []), progress=progress, init=init, **options))
