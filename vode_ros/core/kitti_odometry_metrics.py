"""KITTI odometry devkit metrics (t_err %, r_err deg/100 m) and APE / RPE, numpy only.

:func:`kitti_errors` reproduces ``calcSequenceErrors`` of the KITTI odometry devkit
(``evaluate_odometry.cpp``):

- ``trajectoryDistances``: cumulative distance along the **ground-truth** positions;
- for every ``first_frame`` in ``0, step, 2*step, ...`` (step = 10 frames, "every second")
  and every length ``len`` in ``lengths`` (devkit: 100, 200, ..., 800 m):
  ``last_frame = lastFrameFromSegmentLength(dist, first_frame, len)``, the first frame
  ``i >= first_frame`` with ``dist[i] > dist[first_frame] + len`` (strictly); segments with
  no such frame are skipped;
- ``pose_error = inv(inv(E_first) E_last) · (inv(G_first) G_last)``;
- ``r_err = acos(clamp(0.5 (trace(R_err) - 1), -1, 1)) / len`` (rad / m), and
  ``t_err = ‖t_err‖ / len``;
- the sequence figures are the plain means over all segments (every length pooled, as the
  devkit's ``saveStats`` / published tables); reported as t_err × 100 (%) and
  r_err × 180/π × 100 (deg / 100 m). Per-length means are reported too.

(The devkit computes in single precision; float64 here, differences ~1e-6 relative.)

Our clips are short (the shared KITTI clip is ~60 m), so ``lengths`` is a parameter, e.g.
``(10, 20, 30, 40, 50)``; :func:`fitting_lengths` picks the standard lengths that fit and
otherwise multiples of 10 m (or 1 m) that fit. The result names the lengths that actually
produced segments.

Alignment before the metrics (``align``): ``'none'`` (stereo / metric methods, as the
devkit), ``'scale'`` (one least-squares scale of the positions about the first frame, the
poses' rotations unchanged) or ``'sim3'`` (7-DoF Umeyama on the positions, from
``trajectory.umeyama_alignment``, applied to the whole poses: ``E' = S · E``). ``'se3'`` is
also accepted (6-DoF Umeyama).

:func:`ape` / :func:`rpe` mirror evo's ``APE`` / ``RPE`` metrics (translation part, and
rotation angle for RPE); a test holds them equal to evo.
"""
from __future__ import annotations

import numpy as np

from .trajectory import project_to_so3, umeyama_alignment

KITTI_LENGTHS = (100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0)
STEP_SIZE = 10


def _poses(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[1:] == (3, 4):
        out = np.tile(np.eye(4), (len(x), 1, 1))
        out[:, :3, :] = x
        return out
    if x.ndim != 3 or x.shape[1:] != (4, 4):
        raise ValueError(f"{name} must be (N, 4, 4) or (N, 3, 4) poses, got {x.shape}")
    return x


def _on_so3(poses: np.ndarray) -> np.ndarray:
    """(N, 4, 4) -> a copy with each rotation block replaced by its nearest rotation."""
    out = poses.copy()
    out[:, :3, :3] = project_to_so3(poses[:, :3, :3])
    return out


def trajectory_distances(poses: np.ndarray) -> np.ndarray:
    """devkit trajectoryDistances: (N,) cumulative path length, dist[0] = 0."""
    p = _poses(poses, "poses")[:, :3, 3]
    steps = np.linalg.norm(np.diff(p, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def last_frame_from_segment_length(dist: np.ndarray, first_frame: int, length: float) -> int:
    """devkit lastFrameFromSegmentLength: first i >= first_frame with dist[i] > dist[first] + len, else -1."""
    idx = np.nonzero(dist[first_frame:] > dist[first_frame] + length)[0]
    return int(first_frame + idx[0]) if idx.size else -1


def rotation_error(pose_error: np.ndarray) -> float:
    """devkit rotationError: the angle (rad) of the rotation part."""
    d = 0.5 * (pose_error[0, 0] + pose_error[1, 1] + pose_error[2, 2] - 1.0)
    return float(np.arccos(max(min(d, 1.0), -1.0)))


def translation_error(pose_error: np.ndarray) -> float:
    """devkit translationError: norm of the translation part (m)."""
    return float(np.linalg.norm(pose_error[:3, 3]))


def align_poses(est: np.ndarray, gt: np.ndarray, align: str = "sim3") -> tuple[np.ndarray, dict]:
    """Align estimated poses to ground truth -> (aligned (N, 4, 4), info {align, scale}).

    'none': unchanged. 'scale': translations (positions) multiplied by the least-squares
    scale ``s = Σ gt·p / Σ p²`` (about the common origin, the first frame of both), rotations
    kept. 'sim3' / 'se3': Umeyama fit of the positions ``gt ≈ s R p + t``, applied to the
    poses as ``[sR | t] · E`` (rotation R applied to the orientations, translations mapped).
    """
    est = _poses(est, "est")
    gt = _poses(gt, "gt")
    if est.shape != gt.shape:
        raise ValueError(f"estimate and ground truth differ in length: {est.shape} vs {gt.shape}")
    p = est[:, :3, 3]
    g = gt[:, :3, 3]
    out = est.copy()
    scale = 1.0
    if align == "none":
        pass
    elif align == "scale":
        denom = float(np.sum(p**2))
        scale = float(np.sum(g * p) / denom) if denom > 0 else 1.0
        out[:, :3, 3] = scale * p
    elif align in ("sim3", "se3"):
        scale, rot, trans = umeyama_alignment(p, g, with_scale=(align == "sim3"))
        out[:, :3, :3] = rot @ est[:, :3, :3]
        out[:, :3, 3] = scale * p @ rot.T + trans
    else:
        raise ValueError(f"align must be 'none', 'scale', 'sim3' or 'se3', not {align!r}")
    return out, {"align": align, "scale": float(scale)}


def fitting_lengths(gt_poses: np.ndarray, standard: tuple[float, ...] = KITTI_LENGTHS,
                    step: float = 10.0, max_count: int = 8) -> tuple[float, ...]:
    """The devkit's lengths that fit the ground-truth path (at least one segment each);
    when none fits (short clips), multiples of ``step`` that fit (at most ``max_count``,
    evenly spread up to the longest that fits), else multiples of 1 m; () when even 1 m
    does not fit."""
    dist = trajectory_distances(gt_poses)
    total = float(dist[-1])
    fit = tuple(float(x) for x in standard if total > x)
    if fit:
        return fit
    for st in (step, 1.0):
        n_fit = int(np.ceil(total / st)) - 1          # k * st < total
        if n_fit >= 1:
            ks = np.unique(np.round(np.linspace(1, n_fit, min(n_fit, max_count))).astype(int))
            return tuple(float(k * st) for k in ks)
    return ()


def kitti_errors(est_poses: np.ndarray, gt_poses: np.ndarray, lengths=KITTI_LENGTHS,
                 step_size: int = STEP_SIZE, align: str = "none") -> dict:
    """KITTI devkit t_err / r_err of a full trajectory (see the module docstring).

    est_poses, gt_poses: (N, 4, 4) (or (N, 3, 4)) absolute poses, the same frames.
    Returns ``t_err`` (%), ``r_err`` (deg / 100 m), ``n_segments``, ``lengths_requested``,
    ``lengths_used`` (those with at least one segment), ``per_length`` ({length: {t_err,
    r_err, n}}), ``segments`` (list of (first_frame, length, t_err %, r_err deg/100m)),
    ``align`` and ``scale``. With no segment at all the errors are NaN.
    """
    est = _poses(est_poses, "est_poses")
    gt = _poses(gt_poses, "gt_poses")
    if est.shape != gt.shape:
        raise ValueError(f"estimate and ground truth differ in length: {est.shape} vs {gt.shape}")
    est, info = align_poses(est, gt, align)
    dist = trajectory_distances(gt)
    lengths = tuple(float(x) for x in lengths)
    segs = []
    for first in range(0, len(gt), step_size):
        for length in lengths:
            last = last_frame_from_segment_length(dist, first, length)
            if last == -1:
                continue
            delta_gt = np.linalg.inv(gt[first]) @ gt[last]
            delta_est = np.linalg.inv(est[first]) @ est[last]
            err = np.linalg.inv(delta_est) @ delta_gt
            segs.append((first, length, translation_error(err) / length, rotation_error(err) / length))
    per_length = {}
    for length in lengths:
        rows = [s for s in segs if s[1] == length]
        if rows:
            per_length[length] = {
                "t_err": float(np.mean([r[2] for r in rows]) * 100.0),
                "r_err": float(np.mean([r[3] for r in rows]) * 180.0 / np.pi * 100.0),
                "n": len(rows),
            }
    t_err = float(np.mean([s[2] for s in segs]) * 100.0) if segs else float("nan")
    r_err = float(np.mean([s[3] for s in segs]) * 180.0 / np.pi * 100.0) if segs else float("nan")
    return {
        "t_err": t_err,
        "r_err": r_err,
        "n_segments": len(segs),
        "lengths_requested": list(lengths),
        "lengths_used": [float(x) for x in per_length],
        "per_length": {str(int(x) if float(x).is_integer() else x): v for x, v in per_length.items()},
        "segments": [(int(f), float(l), float(t * 100.0), float(r * 180.0 / np.pi * 100.0))
                     for f, l, t, r in segs],
        "step_size": int(step_size),
        "path_length": float(dist[-1]),
        **info,
    }


def _stats(err: np.ndarray) -> dict:
    err = np.asarray(err, dtype=np.float64)
    if err.size == 0:
        nan = float("nan")
        return {"rmse": nan, "mean": nan, "median": nan, "std": nan, "min": nan, "max": nan, "sse": nan, "n": 0}
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mean": float(np.mean(err)),
        "median": float(np.median(err)),
        "std": float(np.std(err)),
        "min": float(np.min(err)),
        "max": float(np.max(err)),
        "sse": float(np.sum(err**2)),
        "n": int(err.size),
    }


def ape(est_poses: np.ndarray, gt_poses: np.ndarray, align: str = "sim3") -> dict:
    """Absolute pose error, translation part (m), after ``align`` (evo APE with
    ``PoseRelation.translation_part``; evo's ``-a -s`` is 'sim3', ``-a`` is 'se3').
    Also returns the per-frame errors under ``errors``."""
    est, info = align_poses(est_poses, gt_poses, align)
    gt = _poses(gt_poses, "gt_poses")
    err = np.linalg.norm(est[:, :3, 3] - gt[:, :3, 3], axis=1)
    return {**_stats(err), **info, "errors": err}


def rpe(est_poses: np.ndarray, gt_poses: np.ndarray, delta: int = 1, align: str = "none",
        all_pairs: bool = False) -> dict:
    """Relative pose error between frames i and i + delta, as evo's RPE (delta in frames):
    E_i = inv(inv(G_i) G_{i+d}) · inv(E_i) E_{i+d}; the translation part (m) under ``trans``,
    the rotation angle (deg) under ``rot``. Pairs as evo: ``(0, d), (d, 2d), ...`` or, with
    ``all_pairs``, every ``(i, i + d)``. A monocular estimate needs a 'scale' / 'sim3'
    alignment for ``trans`` to mean anything."""
    est, info = align_poses(est_poses, gt_poses, align)
    gt = _poses(gt_poses, "gt_poses")
    n = len(gt)
    if delta < 1 or delta >= n:
        raise ValueError(f"delta must be in [1, {n - 1}], got {delta}")
    first = np.arange(n - delta) if all_pairs else np.arange(0, n, delta)[:-1]
    second = first + delta
    rel_gt = np.linalg.inv(gt[first]) @ gt[second]
    rel_est = np.linalg.inv(est[first]) @ est[second]
    err = np.linalg.inv(rel_gt) @ rel_est
    trans = np.linalg.norm(err[:, :3, 3], axis=1)
    cos = np.clip(0.5 * (np.trace(err[:, :3, :3], axis1=1, axis2=2) - 1.0), -1.0, 1.0)
    rot = np.degrees(np.arccos(cos))
    return {"trans": _stats(trans), "rot": _stats(rot), "delta": int(delta), "all_pairs": bool(all_pairs), **info}


def evo_ape_rpe(est_poses: np.ndarray, gt_poses: np.ndarray, delta: int = 1) -> dict | None:
    """APE (after Sim(3), ``evo_ape -as``) and RPE (delta frames, translation and angle,
    after Sim(3)) computed by the evo package; None when evo is not installed."""
    try:
        from evo.core import metrics
        from evo.core.trajectory import PosePath3D
    except ImportError:
        return None
    # evo refuses rotations not orthonormal to 1e-6; a long integrated estimate or a ground truth
    # given with few digits is only near that: their nearest rotations (a no-op for exact ones).
    est = _on_so3(_poses(est_poses, "est_poses"))
    gt = _on_so3(_poses(gt_poses, "gt_poses"))
    ref = PosePath3D(poses_se3=list(gt))
    traj = PosePath3D(poses_se3=list(est))
    traj.align(ref, correct_scale=True)
    out = {}
    ape_m = metrics.APE(metrics.PoseRelation.translation_part)
    ape_m.process_data((ref, traj))
    out["ape_trans_sim3"] = {k: float(v) for k, v in ape_m.get_all_statistics().items()}
    for name, rel in (("rpe_trans", metrics.PoseRelation.translation_part),
                      ("rpe_rot_deg", metrics.PoseRelation.rotation_angle_deg)):
        m = metrics.RPE(rel, delta=delta, delta_unit=metrics.Unit.frames, all_pairs=False)
        m.process_data((ref, traj))
        out[name] = {k: float(v) for k, v in m.get_all_statistics().items()}
    out["delta_frames"] = int(delta)
    return out
