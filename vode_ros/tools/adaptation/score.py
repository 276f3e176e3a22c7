"""Scores of a model on the held-out part of a recording, as the nodes would run it.

- photometric: the model's own photometric loss terms (``photometric*``; the stereo term too
  where the bag is stereo) on the held-out snippets, torch, no augmentation: needs no reference,
  so it is always measured;
- depth (ONNX Runtime, the exported depth.onnx, focal-length rescaling as in the node) against
  the best reference the bag has: a depth topic, else the stereo pair's SGBM (pseudo ground
  truth at the camera's resolution); Abs Rel median-scaled and metric, the median scale
  pred/true, and a constant depth (the reference's median) beside it;
- pose against the bag's odometry / ground truth: ATE-5 (SfMLearner protocol) and the path length
  ratio (its metric scale) of the odometry the node publishes from a mono camera with this model
  (``pose_*``: the runtime's OdometryPipeline, hybrid, on the depth net's depth: both nets at work,
  what the guard judges), and of the pose net alone chained (``pose_net_*``, for the report).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_FRAMES = 3      # held-out frames kept for the before/after figure


@dataclass
class HeldOut:
    """The held-out part of a recording: full-resolution frames and their references."""
    seq: Any                                   # FrameSequence of the held-out frames (camera size)
    depth: list[np.ndarray | None] | None      # depth-topic readings, or None
    reference: str = ""                        # what the depth is scored against: 'depth topic' | 'stereo SGBM' | ''
    references: list[np.ndarray | None] = field(default_factory=list)   # per frame, metres (0 = none)


def _num_disparities(width: int) -> int:
    return int(min(128, max(16, (width // 4) // 16 * 16)))


def prepare_heldout(seq, depth: list[np.ndarray | None] | None) -> HeldOut:
    """References per held-out frame: the depth topic where the bag has one, else SGBM of the pair."""
    from vode_ros.core.image_codec import to_gray
    from vode_ros.core.stereo_depth import sgbm_depth

    held = HeldOut(seq, depth)
    if depth is not None and any(d is not None for d in depth):
        held.reference, held.references = "depth topic", list(depth)
    elif seq.right is not None and seq.baseline:
        held.reference = "stereo SGBM"
        nd = _num_disparities(seq.image_size[0])
        for left, right in zip(seq.left, seq.right):
            gl = to_gray(left, "rgb8" if left.ndim == 3 else "mono8")
            gr = to_gray(right, "rgb8" if right.ndim == 3 else "mono8")
            held.references.append(sgbm_depth(gl, gr, float(seq.k[0, 0]), float(seq.baseline), num_disparities=nd))
    return held


def heldout_dataset(seq, cfg: dict[str, Any], stereo: bool):
    """Snippets of the held-out frames at the network size, stride 1, no augmentation."""
    from vode_training.data.snippets import SnippetDataset

    d = cfg["data"]
    return SnippetDataset([seq], d["width"], d["height"], d["color"], stereo, tuple(d["offsets"]), augment=False,
                          max_stride=1)


def photometric_error(method, dataset, batch_size: int = 4) -> float:
    """Mean of the method's photometric terms over every snippet of ``dataset`` (eval, no grad)."""
    import torch
    from torch.utils.data import default_collate

    was_training = method.training
    method.eval()
    terms = [t for t in method.terms if t.name.startswith("photometric")] or list(method.terms)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(dataset), batch_size):
            items = [dataset[j] for j in range(i, min(len(dataset), i + batch_size))]
            batch = default_collate(items)
            out = method(batch)
            total += float(sum(t(out, batch) for t in terms).item()) * len(items)
            count += len(items)
    method.train(was_training)
    return total / max(count, 1)


def _encoding(img: np.ndarray) -> str:
    return "rgb8" if img.ndim == 3 else "mono8"


def predict_depths(model_dir: Path, seq) -> list[np.ndarray]:
    """depth.onnx on every frame of ``seq`` as the depth node runs it -> (h, w) metres at the net size."""
    from vode_ros.runtime.inference import DepthNet, OnnxModel

    model = OnnxModel(Path(model_dir) / "depth.onnx", ["CPUExecutionProvider"], expected_kind="depth")
    est = DepthNet(model)
    k_net = model.intrinsics_for_net(seq.k, seq.image_size)
    return [est(model.preprocess(img, _encoding(img)), fx=float(k_net[0, 0])) for img in seq.left]


def predict_trajectory(model_dir: Path, seq) -> np.ndarray:
    """pose.onnx chained over ``seq`` -> camera poses (N, 4, 4), first = identity."""
    from vode_ros.core.trajectory import integrate_relative
    from vode_ros.runtime.inference import OnnxModel, PoseNet

    model = OnnxModel(Path(model_dir) / "pose.onnx", ["CPUExecutionProvider"], expected_kind="pose")
    est = PoseNet(model)
    inputs = [model.preprocess(img, _encoding(img)) for img in seq.left]
    est.start(inputs[0])
    rel = np.stack([est(cur, prev) for prev, cur in zip(inputs[:-1], inputs[1:])])
    return integrate_relative(rel)


def predict_odometry(model_dir: Path, seq, depths: list[np.ndarray]) -> np.ndarray:
    """The odometry node's mono pipeline over ``seq`` -> camera poses (N, 4, 4), first = identity:
    pose source hybrid (the pose net's motion as prior and fallback, tracking + PnP / essential
    matrix on ``depths``, the depth net's (h, w) metres per frame), the node's mono defaults; run
    as `vode eval pose --depth mono` runs it (pose_bench.run_source)."""
    from vode_ros.runtime.inference import OnnxModel
    from vode_ros.runtime.pose.config import PoseEstimatorConfig
    from vode_ros.runtime.pose.depth_input import resolve_length_smoothing, use_essential
    from vode_ros.tools.pose_bench import run_source

    model = OnnxModel(Path(model_dir) / "pose.onnx", ["CPUExecutionProvider"], expected_kind="pose")
    config = PoseEstimatorConfig(essential=use_essential("auto", "mono"),
                                 length_smoothing=resolve_length_smoothing(-1.0, "mono"))
    frames = {"images": list(seq.left), "depths": list(depths), "pose_model": model}
    return run_source(seq, frames, "hybrid", config, progress=False)["poses"]


def depth_scores(depths: list[np.ndarray], references: list[np.ndarray | None]) -> dict[str, float]:
    """Abs Rel median-scaled and metric, pred/true scale, and the constant baseline, over the frames
    with a reference (max depth: 80 m outdoors, 10 m indoors, from the reference)."""
    from vode_ros.core import depth_metrics as dm
    from vode_ros.tools.evaluate import domain_cap

    pairs = [(p, r) for p, r in zip(depths, references) if r is not None and (r > 0).any()]
    if not pairs:
        return {}
    cap = domain_cap([r for _, r in pairs])
    rows: dict[str, list[dict]] = {"median": [], "metric": [], "constant": []}
    for pred, ref in pairs:
        pred_r = dm.resize_to_truth(pred, ref.shape)
        for name, p, med in (("median", pred_r, True), ("metric", pred_r, False), ("constant", np.ones_like(pred_r), True)):
            rows[name].append(dm.compute_depth_metrics(ref, p, max_depth=cap, garg_crop=False, median_scaling=med))
    means = {k: dm.mean_metrics(v) for k, v in rows.items()}
    scales = np.array([r["scale"] for r in rows["median"] if r["n_valid"] > 0])
    return {"depth_abs_rel": means["median"]["abs_rel"], "depth_abs_rel_metric": means["metric"]["abs_rel"],
            "depth_a1": means["median"]["a1"], "constant_abs_rel": means["constant"]["abs_rel"],
            "scale_pred_over_true": float(np.median(1.0 / scales)) if scales.size else float("nan"),
            "depth_frames": len(pairs), "depth_max_m": cap}


def pose_scores(est: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    from vode_ros.core.trajectory import ate5, path_length

    if len(gt) < 5:
        return {}
    mean, std = ate5(est, gt)
    gt_len = path_length(gt)
    return {"pose_ate5": mean, "pose_ate5_std": std, "path_length_ratio": path_length(est) / gt_len if gt_len > 0
            else float("nan"), "pose_frames": len(gt), "pose_snippets": len(gt) - 4}


def score_model(model_dir: Path, method, held: HeldOut, snippets) -> tuple[dict[str, float], dict[str, Any]]:
    """-> (scores, extras for the report: sample depths, trajectory)."""
    scores: dict[str, float] = {"photometric": photometric_error(method, snippets)}
    depths = predict_depths(model_dir, held.seq)
    if held.references:
        scores.update(depth_scores(depths, held.references))
    extras: dict[str, Any] = {}
    if held.seq.poses is not None:
        gt = np.linalg.inv(held.seq.poses[0]) @ held.seq.poses
        odometry = predict_odometry(model_dir, held.seq, depths)
        scores.update(pose_scores(odometry, gt))
        net_alone = predict_trajectory(model_dir, held.seq)
        scores.update({f"pose_net_{k.removeprefix('pose_')}": v for k, v in pose_scores(net_alone, gt).items()
                       if k not in ("pose_frames", "pose_snippets")})
        extras["trajectory"], extras["trajectory_gt"] = odometry, gt
    picks = sorted({0, len(depths) // 2, len(depths) - 1})[:SAMPLE_FRAMES]
    extras["samples"] = {i: depths[i] for i in picks}
    return scores, extras
