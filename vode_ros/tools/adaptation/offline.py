"""``vode adapt``: one command from a recorded bag to an installed model.

1. read the bag (bag_data) and split it in time (split): the last ``holdout`` share judges;
2. score the model in use on the held-out part (score);
3. fine-tune it within the time budget on the first part (finetune: the base training frames
   mixed in where they are on this machine, an L2-SP pull toward the base weights);
4. export the candidate, give it the scale of the recording's scale source, score it the same way,
   and on a held-out set of another place beside the base model (forgetting);
5. the guard (guard.judge) installs it or keeps the old model, saying why (install); the report
   (report.json + report.png) goes beside the model; ``apply_to`` hot-reloads running nodes.

The scale source, in this order: the stereo pair (the training's stereo term), a depth topic
(the median depth-topic / model ratio on the training frames, folded into the model's
``vode.train_fx``), the bag's odometry (pose supervision of the training), the camera height
(the ground plane's height ratio on the training frames, folded the same way); without any,
the model's depth is relative (``vode.metric_scale`` false) and the report says so.
"""
from __future__ import annotations

import copy
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .guard import judge
from .install import default_out_dir, export_method, install, set_metadata
from .report import headline, write_figure, write_json
from .split import time_split

BASE_FRAMES_PER_SEQUENCE = 120    # base training frames loaded per sequence for the replay share


class AdaptError(RuntimeError):
    """The adaptation cannot run as asked; the message says why and the way out."""


@dataclass
class AdaptOptions:
    bag: str
    image_topic: str = ""
    right_topic: str = ""
    depth_topic: str = ""
    odometry_topic: str | None = None          # None: the bag's first odometry topic; '' = none
    minutes: float = 5.0
    max_steps: int = 0                         # > 0: stop after this many steps too (tests)
    out: str = ""
    name: str = ""
    init: str = ""
    apply_to: str | None = None
    holdout: float = 0.2
    lr: float = 1e-4
    batch_size: int = 4
    base_share: float = 0.25
    l2sp: float = 0.01
    camera_height: float = 0.0
    domain: str = ""
    other: list[str] = field(default_factory=list)    # KITTI-layout folders of other places (forgetting)
    other_stride: int = 2
    threads: int = 0
    progress: bool = True
    seed: int = 0
    overrides: list[str] = field(default_factory=list)   # extra config overrides (tiny nets in tests)


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"vode adapt: {msg}", file=sys.stderr, flush=True)


def _resolve_init(init: str, domain: str = "") -> tuple[Path, Path | None]:
    """(checkpoint, folder with the depth.onnx/pose.onnx exported from it, or None). Without ``init``
    the shipped model the nodes would run for ``domain`` (the indoor one indoors, else the driving one)."""
    from vode_ros.runtime.inference import default_model_dir, shipped_model_for
    from vode_training.checkpoint import resolve_checkpoint

    path = Path(init).expanduser() if init else default_model_dir(shipped_model_for("", domain))
    ckpt = resolve_checkpoint(path, "sfmlearner")
    folder = path if path.is_dir() else None
    if folder is not None and not ((folder / "depth.onnx").is_file() and (folder / "pose.onnx").is_file()):
        folder = None
    return ckpt, folder


def _base_dataset(base_cfg: dict[str, Any], cfg: dict[str, Any], stereo: bool):
    """The base model's own training frames (a bounded share per sequence), or (None, why)."""
    from vode_training.data import data_path
    from vode_training.data.sequences import kitti_odometry
    from vode_training.data.snippets import SnippetDataset

    d = base_cfg["data"]
    if d.get("kind", "kitti_odometry") != "kitti_odometry":
        return None, f"the base model trained on data.kind {d.get('kind')}: no replay"
    paths = [data_path(d, p) for p in (d.get("paths") or [d["path"]])]
    found = [p for p in paths if (p / "calib.txt").is_file()]
    if not found:
        return None, f"the base training frames ({', '.join(str(p) for p in paths[:3])}) are not on this machine"
    seqs = [kitti_odometry(p, BASE_FRAMES_PER_SEQUENCE) for p in found]
    c = cfg["data"]
    ds = SnippetDataset(seqs, c["width"], c["height"], c["color"], stereo, tuple(c["offsets"]), augment=True,
                        brightness=c["brightness"], contrast=c["contrast"], max_stride=1, stereo_optional=True)
    return ds, f"{len(ds)} snippets of {', '.join(p.name for p in found)}"


def _train_dataset(seq, cfg: dict[str, Any], stereo: bool):
    from vode_training.data.snippets import SnippetDataset

    from .adapter import max_stride_of

    d = cfg["data"]
    kwargs = dict(augment=bool(d["augment"]), brightness=d["brightness"], contrast=d["contrast"],
                  max_stride=max_stride_of(d.get("max_stride", 1)), scale_crop=float(d.get("scale_crop", 0.0)))
    try:   # drop frames where the camera stood still, as `vode train --bag` does
        return SnippetDataset([seq], d["width"], d["height"], d["color"], stereo, tuple(d["offsets"]),
                              static_filter="flow", static_threshold=float(d.get("static_threshold", 1.0)), **kwargs)
    except ValueError:   # a recording that hardly moves: keep every frame
        return SnippetDataset([seq], d["width"], d["height"], d["color"], stereo, tuple(d["offsets"]), **kwargs)


def _calibration(model_dir: Path, seq, depth: list | None, camera_height: float) -> tuple[float, str]:
    """(metres per model unit, how) on the training frames: depth topic, else camera height; (1, '')."""
    from vode_ros.runtime.scale import ground_height, median_ratio

    from .score import predict_depths

    picks = list(range(0, len(seq), max(1, len(seq) // 20)))
    sub = seq.subset(picks)
    preds = predict_depths(model_dir, sub)
    ratios = []
    if depth is not None:
        import cv2

        for i, pred in zip(picks, preds):
            if depth[i] is not None:
                ref = cv2.resize(depth[i], pred.shape[::-1], interpolation=cv2.INTER_NEAREST)
                r = median_ratio(ref, pred, max_depth=1e4, min_valid=50)
                if r:
                    ratios.append(r)
        if ratios:
            return float(np.median(ratios)), f"depth topic (median ratio over {len(ratios)} training frames)"
    if camera_height > 0:
        from vode_ros.core.geometry import scale_intrinsics

        k_net = scale_intrinsics(seq.k, seq.image_size, preds[0].shape[::-1])
        heights = [h for h in (ground_height(p, k_net) for p in preds) if h]
        if heights:
            return camera_height / float(np.median(heights)), f"camera height {camera_height:g} m over {len(heights)} ground fits"
    return 1.0, ""


def _forgetting(others: list[str], before_dir: Path, after_dir: Path, stride: int) -> list[dict[str, Any]]:
    from vode_ros.tools.evaluate import evaluate_depth

    rows = []
    for other in others:
        try:
            b = evaluate_depth(other, before_dir, median_scaling=True, stride=stride, progress=False)
            a = evaluate_depth(other, after_dir, median_scaling=True, stride=stride, progress=False)
        except Exception as exc:   # noqa: BLE001 - a missing or unreadable folder is reported, not fatal
            rows.append({"place": str(other), "error": f"{exc.__class__.__name__}: {exc}"})
            continue
        bb, aa = b["scores"]["median_scaled"]["abs_rel"], a["scores"]["median_scaled"]["abs_rel"]
        rows.append({"place": Path(other).name, "reference": b["gt_source"], "frames": b["n_images"],
                     "abs_rel_before": bb, "abs_rel_after": aa, "change": (aa - bb) / bb,
                     "abs_rel_metric_before": b["scores"]["metric"]["abs_rel"],
                     "abs_rel_metric_after": a["scores"]["metric"]["abs_rel"],
                     "constant_abs_rel": b["scores"]["constant"]["abs_rel"]})
    return rows


def adapt_bag(opts: AdaptOptions) -> dict[str, Any]:
    """Run the whole adaptation (module doc) -> the report (also written to <place>/report.json)."""
    import torch

    from vode_training.checkpoint import load_checkpoint, method_from_checkpoint
    from vode_training.config import ConfigError, load_config, poses_give_scale
    from vode_ros.bag.reader import BagReadError
    from vode_training.data.rosbag_frames import BagDataError

    from .bag_data import load_adapt_data
    from .score import heldout_dataset, prepare_heldout, score_model

    t_start = time.monotonic()
    if opts.threads > 0:
        torch.set_num_threads(opts.threads)
    try:
        ckpt_path, before_dir = _resolve_init(opts.init, opts.domain)
        ckpt = load_checkpoint(ckpt_path)
    except (FileNotFoundError, ValueError) as exc:
        raise AdaptError(f"--init: {exc}") from None
    base_cfg = ckpt["config"]
    try:
        data = load_adapt_data(opts.bag, opts.image_topic, opts.right_topic, opts.depth_topic, opts.odometry_topic,
                               color=base_cfg["data"]["color"])
    except (BagDataError, BagReadError) as exc:
        raise AdaptError(str(exc)) from None
    seq = data.seq
    try:
        train_idx, held_idx = time_split(len(seq), opts.holdout)
    except ValueError as exc:
        raise AdaptError(f"{opts.bag}: {exc}") from None
    stereo = data.stereo
    if stereo:
        scale_source = "stereo"
    elif data.depth is not None:
        scale_source = "depth topic"
    elif seq.poses is not None:
        scale_source = "odometry"
    elif opts.camera_height > 0:
        scale_source = "camera height"
    else:
        scale_source = "none"
    overrides = [f"data.stereo={'true' if stereo else 'false'}", "data.kind=rosbag", f"data.path={Path(opts.bag).resolve()}",
                 f"data.image_topic={data.image_topic}", f"data.right_topic={data.right_topic if stereo else ''}",
                 f"data.domain={opts.domain}", "data.max_frames=0", "train.init=", "train.init_nets=[]"]
    if scale_source == "odometry" and not poses_give_scale(base_cfg.get("loss", {})):
        overrides.append("loss.pose_weight=1.0")     # the bag's motion in metres teaches the scale
    try:
        cfg = load_config(copy.deepcopy(base_cfg), overrides + list(opts.overrides))
        cand_ckpt = dict(ckpt, config=cfg)
        method = method_from_checkpoint(cand_ckpt)
        reference = method_from_checkpoint(cand_ckpt)     # the base weights, for the before scores
    except (ConfigError, ValueError, RuntimeError) as exc:
        raise AdaptError(f"cannot rebuild the model of {ckpt_path} for this bag "
                         f"({'stereo' if stereo else 'mono'}): {exc}") from None
    train_seq, held_seq = seq.subset(train_idx), seq.subset(held_idx)
    train_depth = [data.depth[i] for i in train_idx] if data.depth is not None else None
    held_depth = [data.depth[i] for i in held_idx] if data.depth is not None else None
    _log(f"{opts.bag}: {len(seq)} frames ({'stereo' if stereo else 'mono'}), training on frames 0-{train_idx[-1]}, "
         f"judging on {held_idx[0]}-{held_idx[-1]}; scale source: {scale_source}", opts.progress)
    work = Path(tempfile.mkdtemp(prefix="vode-adapt-"))
    try:
        if before_dir is None:
            before_dir = work / "before"
            export_method(method_from_checkpoint(ckpt), int(ckpt.get("step", 0)), before_dir, {})
        held = prepare_heldout(held_seq, held_depth)
        snippets = heldout_dataset(held_seq, cfg, stereo)
        before, before_extras = score_model(before_dir, reference, held, snippets)
        _log(f"before: {json.dumps({k: round(v, 4) for k, v in before.items() if isinstance(v, float)})}", opts.progress)
        train_ds = _train_dataset(train_seq, cfg, stereo)
        base_ds, base_note = (None, "replay off (--base-share 0)")
        if opts.base_share > 0:
            base_ds, base_note = _base_dataset(base_cfg, cfg, stereo)
        _log(f"fine-tuning {opts.minutes:g} min on {len(train_ds)} snippets; base replay: {base_note}; "
             f"L2-SP {opts.l2sp:g}", opts.progress)
        from .finetune import finetune

        result = finetune(method, train_ds, opts.minutes * 60.0, opts.lr, opts.batch_size, base_ds, opts.base_share,
                          opts.l2sp, opts.max_steps, opts.seed, opts.progress,
                          float(cfg["train"].get("grad_clip", 0.0) or 0.0))
        fx_net = float(train_ds.k[0, 0])
        candidate = work / "candidate"
        steps_total = int(ckpt.get("step", 0)) + result.steps
        base_meta = _onnx_meta(before_dir / "depth.onnx")
        note = {"bag": str(Path(opts.bag).resolve()), "image_topic": data.image_topic, "steps": result.steps,
                "minutes": opts.minutes, "base": str(ckpt_path), "scale_source": scale_source,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        meta = {"vode.trained_on": f"{base_meta.get('vode.trained_on', ckpt_path.name)} + adapted on "
                                   f"{Path(opts.bag).name} ({result.steps} steps)",
                "vode.adaptation": json.dumps(note), "vode.scale_source": scale_source,
                "vode.train_fx": f"{fx_net:.3f}",
                "vode.train_hfov_deg": json.dumps([round(data.hfov_deg, 2), round(data.hfov_deg, 2)]),
                "vode.metric_scale": "false" if scale_source == "none" else "true"}
        if opts.domain:
            meta["vode.train_domain"] = opts.domain
        export_method(method, steps_total, candidate, meta)
        calibration, how = (1.0, "")
        if scale_source in ("depth topic", "camera height"):
            calibration, how = _calibration(candidate, train_seq, train_depth, opts.camera_height)
            if how:   # the run time multiplies depth by fx / train_fx: a smaller train_fx scales it up
                for kind in ("depth", "pose"):
                    set_metadata(candidate / f"{kind}.onnx", {"vode.train_fx": f"{fx_net / calibration:.3f}",
                                                              "vode.scale_calibration": f"{calibration:.5f} ({how})"})
            else:
                scale_source = "none"
                for kind in ("depth", "pose"):
                    set_metadata(candidate / f"{kind}.onnx", {"vode.metric_scale": "false", "vode.scale_source": "none"})
        after, after_extras = score_model(candidate, method, held, snippets)
        _log(f"after:  {json.dumps({k: round(v, 4) for k, v in after.items() if isinstance(v, float)})}", opts.progress)
        # The depth the node will publish: metres where the candidate has a scale source.
        depth_key = "depth_abs_rel" if scale_source == "none" else "depth_abs_rel_metric"
        verdict = judge(before, after, depth_key=depth_key)
        others = [o for o in opts.other if o and o.lower() != "none"]
        forgetting = _forgetting(others, before_dir, candidate, opts.other_stride) if others else []
        name = opts.name or Path(opts.bag).resolve().name
        place = Path(opts.out).expanduser() if opts.out else default_out_dir()
        place = place / name
        ended = install(candidate, place, verdict.install)
        scale_note = {"stereo": "metric: the stereo pair's baseline (stereo term of the training)",
                      "depth topic": f"metric: calibrated to {data.depth_topic} ({how}, x{calibration:.3f})",
                      "odometry": f"metric: the motion of {data.odometry_topic} (pose supervision)",
                      "camera height": f"metric: {how} (x{calibration:.3f})",
                      "none": "relative depth: the bag has no stereo pair, depth topic or odometry and no camera "
                              "height was given (--camera-height); the model publishes relative depth"}[scale_source]
        report: dict[str, Any] = {
            "bag": str(Path(opts.bag).resolve()), "image_topic": data.image_topic, "right_topic": data.right_topic,
            "depth_topic": data.depth_topic, "odometry_topic": data.odometry_topic,
            "split": {"frames": len(seq), "train": [train_idx[0], train_idx[-1]], "heldout": [held_idx[0], held_idx[-1]],
                      "rule": f"in time: the last {opts.holdout:.0%} held out"},
            "base_model": {"checkpoint": str(ckpt_path), "onnx": str(before_dir) if before_dir.parent != work else "",
                           "trained_on": base_meta.get("vode.trained_on", "")},
            "scale_source": scale_source, "scale": scale_note,
            "depth_reference": held.reference or "none",
            "training": {"minutes": opts.minutes, "steps": result.steps, "base_replay_steps": result.base_steps,
                         "seconds": round(result.seconds, 1), "final_loss": result.final_loss, "lr": opts.lr,
                         "batch_size": opts.batch_size, "base_share": opts.base_share, "base_replay": base_note,
                         "l2sp": opts.l2sp, "l2sp_distance": result.l2sp_final, "snippets": len(train_ds)},
            "before": before, "after": after, "forgetting": forgetting,
            "verdict": verdict.summary, "reasons": verdict.reasons, "installed": verdict.install,
            "judged_depth": depth_key,
            "model_dir": str(place) if verdict.install else "", "candidate_dir": str(ended),
            "seconds_total": round(time.monotonic() - t_start, 1), "options": asdict(opts),
        }
        report["headline"] = headline(report)
        report["figure"] = str(write_figure(place / "report.png", held_seq, before_extras, after_extras,
                                            held.references, report))
        if verdict.install and opts.apply_to is not None:
            from .install import apply_to

            report["applied"] = apply_to(opts.apply_to, place)
        write_json(report, place / "report.json")
        report["report"] = str(place / "report.json")
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _onnx_meta(path: Path) -> dict[str, str]:
    import onnx

    try:
        return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception:   # noqa: BLE001 - metadata is a nicety here
        return {}


