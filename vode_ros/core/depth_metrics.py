"""Single-image depth metrics, Eigen protocol as the SfMLearner reference code implements it.

numpy (+ OpenCV for the resize) only: no torch, so the ROS run time can import it.

Protocol (Eigen et al. 2014 as used by SfMLearner and monodepth2, reproduced exactly):

1. the prediction is resized **here** (``cv2.resize``, bilinear) to the ground-truth size when
   the shapes differ, so callers may pass the network-resolution depth directly;
2. valid pixels: ``min_depth < gt < max_depth`` and, with ``garg_crop``, inside the Garg crop
   rows ``int(0.40810811 H) : int(0.99189189 H)``, cols ``int(0.03594771 W) :
   int(0.96405229 W)`` (integer truncation as in the reference);
3. with ``median_scaling``: ``scale = median(gt[valid]) / median(pred[valid])``,
   ``pred *= scale`` (monocular methods); without it the scale reported is 1;
4. the prediction is clamped to ``[min_depth, max_depth]``;
5. Abs Rel, Sq Rel, RMSE, RMSE log, δ<1.25, 1.25², 1.25³ over the valid pixels.

Images are averaged with equal weight (:func:`mean_metrics`), not pixels.

``garg_crop=False`` is for pseudo ground truth from stereo (``vode_ros.core.stereo_depth.sgbm_depth``), which
is not projected Velodyne and has its own (different) coverage.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")

# Garg / Eigen crop as fractions of the ground-truth image size.
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)


def garg_crop_mask(height: int, width: int) -> np.ndarray:
    """Boolean (H, W) mask of the Garg crop, integer-truncated like the reference code."""
    top, bottom, left, right = (np.array(GARG_CROP) * [height, height, width, width]).astype(np.int32)
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def resize_to_truth(pred: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Step 1 of the protocol: pred (h, w), (1, h, w) or (h, w, 1) -> (H, W) float64 at the ground
    truth's ``shape`` (bilinear). Callers that score one prediction several ways resize it once."""
    import cv2

    pred = np.asarray(pred, dtype=np.float64)
    if pred.ndim == 3 and pred.shape[0] == 1:
        pred = pred[0]
    elif pred.ndim == 3 and pred.shape[-1] == 1:
        pred = pred[..., 0]
    if pred.ndim != 2:
        raise ValueError(f"pred must be (H, W), got {pred.shape}")
    if pred.shape == tuple(shape):
        return pred
    return cv2.resize(pred.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR).astype(np.float64)


def errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The seven metrics between two 1-D arrays of positive depths (SfMLearner compute_errors)."""
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    thresh = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    log_diff = np.log(gt) - np.log(pred)
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean(log_diff**2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
    }


def evaluated_pixels(gt: np.ndarray, pred: np.ndarray, min_depth: float, max_depth: float, garg_crop: bool
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-2 of the protocol: -> (gt (H, W), pred resized to (H, W), valid (H, W) bool).

    gt (H, W) metres, 0 = none; pred (h, w), (1, h, w) or (h, w, 1). Valid: finite GT inside
    (min_depth, max_depth), inside the Garg crop if asked, and a finite prediction."""
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 2:
        raise ValueError(f"gt must be (H, W), got {gt.shape}")
    pred = resize_to_truth(pred, gt.shape)
    valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth) & np.isfinite(pred)
    if garg_crop:
        valid &= garg_crop_mask(*gt.shape)
    return gt, pred, valid


def compute_depth_metrics(
    gt: np.ndarray,
    pred: np.ndarray,
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
    garg_crop: bool = True,
    median_scaling: bool = True,
) -> dict[str, float]:
    """Metrics of one predicted depth map (metres) against ground truth (metres, 0 = none).

    Returns the seven metrics plus ``scale`` (the median ratio applied, 1.0 without median
    scaling) and ``n_valid`` (pixels evaluated). With no valid pixel every metric is NaN and
    ``n_valid`` is 0; :func:`mean_metrics` skips such images.
    """
    gt, pred, valid = evaluated_pixels(gt, pred, min_depth, max_depth, garg_crop)
    gt_v, pred_v = gt[valid], pred[valid]
    if gt_v.size == 0:
        out = {k: float("nan") for k in METRIC_NAMES}
        out.update(scale=float("nan"), n_valid=0)
        return out

    scale = 1.0
    if median_scaling:
        med_pred = float(np.median(pred_v))
        if med_pred <= 0:
            out = {k: float("nan") for k in METRIC_NAMES}
            out.update(scale=float("nan"), n_valid=0)
            return out
        scale = float(np.median(gt_v)) / med_pred
        pred_v = pred_v * scale
    pred_v = np.clip(pred_v, min_depth, max_depth)

    out = errors(gt_v, pred_v)
    out["scale"] = scale
    out["n_valid"] = int(gt_v.size)
    return out


def mean_metrics(per_image: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Average per-image metric dicts with equal weight per image.

    Images with ``n_valid == 0`` (or NaN metrics) are skipped and counted in ``n_skipped``.
    Also reports the per-image median-scaling ratios: ``scale_mean``, ``scale_std``
    (population std), ``scale_median`` and ``scale_std_rel`` (std / median, the figure
    Monodepth2 prints), plus ``n_images``.
    """
    rows = [dict(r) for r in per_image]
    used = [r for r in rows if r.get("n_valid", 1) > 0 and np.isfinite(r.get("abs_rel", np.nan))]
    out: dict[str, float] = {}
    for k in METRIC_NAMES:
        out[k] = float(np.mean([r[k] for r in used])) if used else float("nan")
    scales = np.array([r.get("scale", np.nan) for r in used], dtype=np.float64)
    scales = scales[np.isfinite(scales)]
    if scales.size:
        med = float(np.median(scales))
        out.update(
            scale_mean=float(scales.mean()),
            scale_std=float(scales.std()),
            scale_median=med,
            scale_std_rel=float(scales.std() / med) if med != 0 else float("nan"),
        )
    else:
        out.update(scale_mean=float("nan"), scale_std=float("nan"), scale_median=float("nan"),
                   scale_std_rel=float("nan"))
    out["n_images"] = len(used)
    out["n_skipped"] = len(rows) - len(used)
    return out


def format_metrics(m: Mapping[str, float]) -> str:
    """One header line and one value line in the usual order (for logs and reports)."""
    head = " ".join(f"{k:>9}" for k in METRIC_NAMES)
    vals = " ".join(f"{m[k]:9.4f}" for k in METRIC_NAMES)
    return head + "\n" + vals
