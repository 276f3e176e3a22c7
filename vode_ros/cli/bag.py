"""`vode bag ...`: build and inspect rosbag2 bags.

    vode bag from-kitti KITTI_DIR OUT [--storage mcap|sqlite3] [--overwrite]
                        [--mount-xyz X Y Z] [--mount-rpy R P Y] [--stamp-offset S]
                        [--max-frames N]
    vode bag info BAG
    vode bag play BAG [--rate R] [--clock] [--loop] [--topics T ...] [--reliable] [--wait-for [T ...]]
                      [--wait-subscribers N]
    vode bag record OUT --topics T [T ...] [--storage mcap|sqlite3] [--duration S]
"""
from __future__ import annotations

import argparse
import sys

from vode_ros.bag import topics as T
from vode_ros.cli import bag_playback
from vode_ros.cli.arg_types import number
from vode_ros.cli.output_paths import declare_outputs

EXIT_BAD_INPUT = 2


def register(subparsers) -> argparse.ArgumentParser:
    """Add the `bag` command (with from-kitti / info) to an argparse subparsers object."""
    bag = subparsers.add_parser("bag", help="convert KITTI to rosbag2, inspect, play and record bags",
                                description="Build, inspect, play and record rosbag2 bags (mcap or sqlite3).")
    sub = bag.add_subparsers(dest="bag_command", metavar="{from-kitti,info,play,record}")
    sub.required = True

    fk = sub.add_parser(
        "from-kitti", help="write a KITTI odometry folder as a rosbag2",
        description="Write a KITTI odometry folder (image_0/, image_1/, calib.txt, times.txt, optional "
                    "poses.txt) as a rosbag2 with stereo images, camera_info, /tf_static and ground-truth "
                    "odometry.")
    fk.add_argument("kitti_dir", metavar="KITTI_DIR", help="folder in KITTI odometry layout")
    fk.add_argument("out", metavar="OUT", help="bag folder to create")
    fk.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="storage plugin (default mcap)")
    fk.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    fk.add_argument("--mount-xyz", nargs=3, type=number(float), metavar=("X", "Y", "Z"), default=list(T.DEFAULT_MOUNT_XYZ),
                    help="camera position on base_link in metres (default %(default)s: KITTI, 1.65 m up)")
    fk.add_argument("--mount-rpy", nargs=3, type=number(float), metavar=("R", "P", "Y"), default=list(T.DEFAULT_MOUNT_RPY),
                    help="camera roll/pitch/yaw on base_link in radians (default %(default)s)")
    fk.add_argument("--stamp-offset", type=number(float), default=0.0, metavar="S",
                    help="seconds added to times.txt for the message stamps (default 0)")
    fk.add_argument("--max-frames", type=int, default=None, metavar="N", help="convert only the first N frames")
    fk.add_argument("--quiet", action="store_true", help="no progress bar")
    fk.set_defaults(func=run)
    declare_outputs(fk, ("out", "OUT", True))

    info = sub.add_parser("info", help="topics, types, counts and duration of a bag",
                          description="Print topics, types, message counts and duration of a rosbag2.")
    info.add_argument("bag", metavar="BAG", help="rosbag2 folder (or the .mcap/.db3 file in it)")
    info.set_defaults(func=run)
    bag_playback.register(sub)
    bag.set_defaults(func=run)
    return bag


def _fail(msg: str) -> int:
    print(f"vode bag: error: {msg}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _from_kitti(args) -> int:
    from vode_ros.bag.kitti_to_bag import BagExistsError, convert
    from vode_ros.core.kitti import KittiFormatError

    if args.max_frames is not None and args.max_frames < 1:
        return _fail(f"--max-frames must be at least 1, not {args.max_frames}")
    try:
        s = convert(args.kitti_dir, args.out, storage=args.storage, mount_xyz=args.mount_xyz,
                    mount_rpy=args.mount_rpy, stamp_offset=args.stamp_offset, progress=not args.quiet,
                    overwrite=args.overwrite, max_frames=args.max_frames)
    except BagExistsError:
        return _fail(f"{args.out} exists already; pass --overwrite to replace it, or choose another OUT")
    except KittiFormatError as exc:
        # A damaged line names its own fix; a missing part of the layout gets the way out here.
        return _fail(str(exc) if "fix" in str(exc).lower() else f"{exc}. Fix: point KITTI_DIR at a folder in that layout")
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    extras = []
    if s["stereo"]:
        extras.append(f"stereo baseline {s['baseline_m']:.4f} m")
    extras.append("ground truth on " + T.GROUND_TRUTH if s["ground_truth"] else "no poses.txt, so no ground truth")
    print(f"Wrote {s['out_path']} ({s['storage']}, {_size(s['size_bytes'])}) in {s['seconds']:.1f} s: "
          f"{s['frames']} frames of {s['image_size'][0]}x{s['image_size'][1]} {s['encoding']}, "
          f"{s['messages']} messages over {s['duration_s']:.2f} s on {len(s['topics'])} topics "
          f"({', '.join(sorted(s['topics']))}); {'; '.join(extras)}. "
          f"Play it with: ros2 bag play {s['out_path']}")
    return 0


def _info(args) -> int:
    from vode_ros.bag.reader import BagReadError, bag_info

    try:
        info = bag_info(args.bag)
    except BagReadError as exc:      # names the bag and the problem (missing, damaged, truncated)
        return _fail(str(exc))
    except Exception as exc:  # rosbags raises several types for unreadable bags
        return _fail(f"cannot read {args.bag} as a rosbag2: {exc}. Fix: give the bag folder "
                     "(the one holding metadata.yaml)")
    parts = []
    for name, t in sorted(info["topics"].items()):
        latched = " (transient_local)" if t["durability"] == "transient_local" else ""
        parts.append(f"{name} [{t['type']}] x{t['count']}{latched}")
    print(f"{info['path']}: {info['messages']} messages on {len(info['topics'])} topics over "
          f"{info['duration_s']:.3f} s starting at {info['start_ns'] / 1e9:.3f} s: " + "; ".join(parts) + ".")
    return 0


def run(args) -> int:
    command = getattr(args, "bag_command", None)
    if command == "from-kitti":
        return _from_kitti(args)
    if command == "info":
        return _info(args)
    if command == "play":
        return bag_playback.run_play(args)
    if command == "record":
        return bag_playback.run_record(args)
    return _fail("missing sub-command; use `vode bag from-kitti KITTI_DIR OUT`, `vode bag info BAG`, "
                 "`vode bag play BAG` or `vode bag record OUT --topics T`")


def main(argv=None) -> int:
    """Stand-alone entry (`python -m vode_ros.cli.bag ...`) until the `vode` CLI wires it in."""
    parser = argparse.ArgumentParser(prog="vode")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
