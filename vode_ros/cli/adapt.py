"""`vode adapt`: fine-tune the model on a recorded bag, judge it on the bag's last minutes, install it
only if it is better (needs torch).

    vode adapt --bag BAG [--image-topic T] [--right-topic T] [--depth-topic T] [--minutes 5]
               [--out DIR] [--name NAME] [--apply-to NAMESPACE] [--init DIR_OR_CHECKPOINT]

The model lands in <out>/<name>/ (default ~/.ros/vode_ros/adapted/<bag name>/) with report.json
and report.png; the package's models/ keep the base model. Start the nodes with
model_dir:=<out>/<name>, or let --apply-to NS point the running nodes of namespace NS at it.
See vode_ros.tools.adaptation.offline for the steps and the scale sources.
"""
from __future__ import annotations

import argparse
import sys

from vode_ros.cli.missing_extras import training_extras_missing
from vode_ros.cli.output_paths import declare_outputs


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "adapt", help="fine-tune the model on a recorded bag; install it only if better on held-out frames",
        description="From a recorded rosbag2 to an installed model: time split (last share held out), fine-tuning "
                    "within a time budget, scores before/after, a guard that installs only a better model, a report.")
    p.add_argument("--bag", required=True, help="rosbag2 folder (or the .mcap/.db3 in it)")
    p.add_argument("--image-topic", default="", help="camera image topic ('' = the bag's left / only camera)")
    p.add_argument("--right-topic", default="", help="right camera image topic (stereo: metric scale, SGBM reference)")
    p.add_argument("--depth-topic", default="", help="depth image topic (32FC1 m or 16UC1 mm): reference and scale")
    p.add_argument("--odometry-topic", default=None,
                   help="odometry / ground truth (nav_msgs/Odometry) for the pose score and scale "
                        "(default: the bag's first such topic; '' = none)")
    p.add_argument("--minutes", type=float, default=5.0, help="fine-tuning time budget (default 5)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps too (0 = time only)")
    p.add_argument("--out", default="", help="folder of adapted models (default ~/.ros/vode_ros/adapted)")
    p.add_argument("--name", default="", help="robot or place name: the model's folder under --out (default: bag name)")
    p.add_argument("--init", default="", help="start from this checkpoint or model folder (default: the shipped "
                   "model of --domain, as the nodes choose: indoor -> models/indoor, else the driving one)")
    p.add_argument("--apply-to", default=None, metavar="NAMESPACE",
                   help="after installing, point the running depth and odometry nodes of NAMESPACE at the new "
                        "model ('/' = the root namespace)")
    p.add_argument("--holdout", type=float, default=0.2, help="share of the bag held out at its end (default 0.2)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--base-share", type=float, default=0.25,
                   help="share of steps on the base model's training frames where they are available (default 0.25)")
    p.add_argument("--l2sp", type=float, default=0.01, help="pull toward the base weights, L2-SP (default 0.01; 0 = off)")
    p.add_argument("--camera-height", type=float, default=0.0,
                   help="camera height over the ground, m: the scale source of a mono bag without stereo, depth or odometry")
    p.add_argument("--domain", default="", help="what the camera sees (driving, indoor): picks the shipped model "
                   "to start from and is recorded in the adapted one")
    p.add_argument("--other", action="append", default=None, metavar="DIR",
                   help="KITTI-layout folder of another place to measure forgetting on (repeatable; default: the "
                        "shipped demo clip; 'none' = skip)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of the model's training config (advanced)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    declare_outputs(p, ("out", "--out", True))      # checked writable before any work (cli.output_paths)
    return p


def _bad(args) -> str | None:
    if args.minutes <= 0 and args.max_steps <= 0:
        return "--minutes must be > 0 (or give --max-steps)"
    if not 0 < args.holdout < 1:
        return f"--holdout must lie between 0 and 1, got {args.holdout}"
    if not 0 <= args.base_share < 1:
        return f"--base-share must lie in [0, 1), got {args.base_share}"
    if args.l2sp < 0 or args.lr <= 0 or args.batch_size < 1:
        return "--l2sp >= 0, --lr > 0 and --batch-size >= 1 are needed"
    return None


def run(args) -> int:
    problem = _bad(args)
    if problem:
        print(f"vode adapt: {problem}", file=sys.stderr)
        return 2
    try:
        from vode_ros.tools.adaptation.offline import AdaptError, AdaptOptions, adapt_bag
    except ImportError as exc:
        return training_extras_missing("vode adapt", exc)
    if args.other is None:
        from vode_ros.core.resources import demo_clip

        others = [str(demo_clip())]
    else:
        others = list(args.other)
    opts = AdaptOptions(bag=args.bag, image_topic=args.image_topic, right_topic=args.right_topic,
                        depth_topic=args.depth_topic, odometry_topic=args.odometry_topic,
                        minutes=args.minutes if args.minutes > 0 else 1e9, max_steps=args.max_steps, out=args.out,
                        name=args.name, init=args.init, apply_to=args.apply_to, holdout=args.holdout, lr=args.lr,
                        batch_size=args.batch_size, base_share=args.base_share, l2sp=args.l2sp,
                        camera_height=args.camera_height, domain=args.domain, other=others, threads=args.threads,
                        progress=not args.no_progress, overrides=list(args.overrides))
    try:
        report = adapt_bag(opts)
    except AdaptError as exc:
        print(f"vode adapt: {exc}", file=sys.stderr)
        return 1
    except (FloatingPointError, FileNotFoundError) as exc:
        print(f"vode adapt: {exc}", file=sys.stderr)
        return 1
    print(f"vode adapt: {report['headline']}")
    print(f"vode adapt: {report['verdict']}")
    print(f"vode adapt: scale: {report['scale']}")
    for row in report["forgetting"]:
        if "error" in row:
            print(f"vode adapt: forgetting on {row['place']}: not measured ({row['error']})")
        else:
            print(f"vode adapt: another place, {row['place']} (vs {row['reference']}): Abs Rel {row['abs_rel_before']:.3f} "
                  f"-> {row['abs_rel_after']:.3f} ({row['change']:+.1%}; constant {row['constant_abs_rel']:.3f})")
    for line in report.get("applied", []):
        print(f"vode adapt: {line}")
    where = report["model_dir"] or report["candidate_dir"]
    print(f"vode adapt: report {report['report']}, figure {report['figure']}; model {where}"
          + (f" (start the nodes with model_dir:={where})" if report["installed"] else " (not installed)"))
    return 0


if __name__ == "__main__":
    from vode_ros.cli.main import run_subcommand

    sys.exit(run_subcommand("adapt"))
