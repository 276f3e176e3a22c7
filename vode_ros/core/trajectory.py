"""Trajectory metrics (numpy only, no torch: the ROS run time imports this too).

Pose conventions follow ``vode_ros.core.geometry``: absolute poses ``W_i`` (4x4) map camera-i
coordinates into the world (frame-0 camera) frame; relative poses ``T_{i-1,i}`` are the
camera-i pose in the camera-(i-1) frame, so ``W_i = W_{i-1} @ T_{i-1,i}``.

- :func:`umeyama_alignment`: least-squares Sim(3)/SE(3) fit ``dst ≈ s R src + t``.
- :func:`ate_rmse`: absolute trajectory error of positions after an alignment.
- :func:`ate5`: SfMLearner's 5-frame snippet ATE (reproduced exactly from its evaluation
  code, see docs/methods.md): per snippet, positions relative to the snippet's first
  frame, one least-squares scale ``s = Σ gt·p / Σ p²``, error ``sqrt(Σ‖s p − gt‖²) / N``
  (divided by N, not √N); mean ± (population) std over all snippets.
"""
from __future__ import annotations

import numpy as np


def _positions(x: np.ndarray) -> np.ndarray:
    """(N, 4, 4) or (N, 3, 4) poses, or (N, 3) positions -> (N, 3) float64 positions."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[1:] in ((4, 4), (3, 4)):
        return x[:, :3, 3].copy()
    if x.ndim == 2 and x.shape[1] == 3:
        return x.copy()
    raise ValueError(f"expected (N, 4, 4) poses or (N, 3) positions, got {x.shape}")


def umeyama_alignment(src: np.ndarray, dst: np.ndarray, with_scale: bool = True
                      ) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama 1991) with ``dst_i ≈ s R src_i + t``.

    src, dst: (N, 3). Returns ``(s, R (3, 3), t (3,))``; ``s = 1`` when ``with_scale`` is
    False (SE(3) fit). Needs N >= 3 non-collinear points for a unique rotation (N >= 2 gives
    some valid minimiser).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3:
        raise ValueError(f"src and dst must both be (N, 3), got {src.shape} and {dst.shape}")
    n = src.shape[0]
    if n < 2:
        raise ValueError("umeyama_alignment needs at least 2 points")
    mu_s = src.mean(axis=0)
    mu_d = dst.mean(axis=0)
    xs = src - mu_s
    xd = dst - mu_d
    var_s = float(np.sum(xs**2) / n)
    cov = xd.T @ xs / n
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rot = u @ sign @ vt
    if with_scale:
        if var_s == 0:
            raise ValueError("umeyama_alignment: source points are all equal, scale undefined")
        scale = float(np.trace(np.diag(d) @ sign) / var_s)
    else:
        scale = 1.0
    trans = mu_d - scale * rot @ mu_s
    return scale, rot, trans


def align_positions(est: np.ndarray, gt: np.ndarray, align: str = "sim3"
                    ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Align estimated positions to ground truth -> (aligned (N, 3), s, R, t).

    align: ``'sim3'`` (7-DoF Umeyama), ``'se3'`` (6-DoF, no scale), ``'scale'`` (one
    least-squares scale about the origin, ``s = Σ gt·p / Σ p²``, no rotation/translation: for
    trajectories that already share the first frame as origin) or ``'none'``.
    """
    p = _positions(est)
    g = _positions(gt)
    if p.shape != g.shape:
        raise ValueError(f"estimate and ground truth differ in length: {p.shape} vs {g.shape}")
    rot, trans, scale = np.eye(3), np.zeros(3), 1.0
    if align == "sim3":
        scale, rot, trans = umeyama_alignment(p, g, with_scale=True)
    elif align == "se3":
        scale, rot, trans = umeyama_alignment(p, g, with_scale=False)
    elif align == "scale":
        denom = float(np.sum(p**2))
        scale = float(np.sum(g * p) / denom) if denom > 0 else 1.0
    elif align != "none":
        raise ValueError(f"align must be 'sim3', 'se3', 'scale' or 'none', not {align!r}")
    aligned = scale * p @ rot.T + trans
    return aligned, scale, rot, trans


def ate_rmse(est_positions: np.ndarray, gt_positions: np.ndarray, align: str = "sim3") -> dict:
    """Absolute trajectory error of positions (metres) after ``align`` (see align_positions).

    Inputs are (N, 3) positions or (N, 4, 4) poses. Returns ``rmse``, ``mean``, ``median``,
    ``max`` of the per-frame position errors, the ``scale`` applied and ``n``.
    """
    aligned, scale, _, _ = align_positions(est_positions, gt_positions, align)
    err = np.linalg.norm(aligned - _positions(gt_positions), axis=1)
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mean": float(err.mean()),
        "median": float(np.median(err)),
        "max": float(err.max()),
        "scale": float(scale),
        "n": int(err.size),
    }


def snippet_ate(est_snippet: np.ndarray, gt_snippet: np.ndarray) -> float:
    """SfMLearner's compute_ate for one snippet of absolute poses (n, 4, 4) each.

    Both are re-expressed relative to the snippet's first frame (``inv(W_0) @ W_j``), the
    first positions are made to coincide (a no-op after that, kept as in the reference), one
    scale ``s = Σ gt·p / Σ p²`` is fitted, and the error is ``sqrt(Σ‖s p − gt‖²) / n``.
    """
    est = np.asarray(est_snippet, dtype=np.float64)
    gt = np.asarray(gt_snippet, dtype=np.float64)
    if est.shape != gt.shape or est.ndim != 3 or est.shape[1:] != (4, 4):
        raise ValueError(f"snippets must both be (n, 4, 4), got {est.shape} and {gt.shape}")
    p = (np.linalg.inv(est[0]) @ est)[:, :3, 3]
    g = (np.linalg.inv(gt[0]) @ gt)[:, :3, 3]
    p = p + (g[0] - p[0])[None, :]
    denom = float(np.sum(p**2))
    scale = float(np.sum(g * p) / denom) if denom > 0 else 0.0
    return float(np.sqrt(np.sum((scale * p - g) ** 2)) / len(p))


def ate5(est_poses: np.ndarray, gt_poses: np.ndarray, snippet_len: int = 5) -> tuple[float, float]:
    """Mean and (population) std of :func:`snippet_ate` over all windows of ``snippet_len``
    consecutive frames starting at every frame (N - snippet_len + 1 snippets).

    est_poses, gt_poses: (N, 4, 4) absolute poses (any common or per-trajectory origin: each
    snippet is re-expressed relative to its own first frame).
    """
    est = np.asarray(est_poses, dtype=np.float64)
    gt = np.asarray(gt_poses, dtype=np.float64)
    if est.shape != gt.shape or est.ndim != 3 or est.shape[1:] != (4, 4):
        raise ValueError(f"poses must both be (N, 4, 4), got {est.shape} and {gt.shape}")
    n = est.shape[0]
    if n < snippet_len:
        raise ValueError(f"need at least {snippet_len} poses, got {n}")
    errs = np.array([snippet_ate(est[i:i + snippet_len], gt[i:i + snippet_len])
                     for i in range(n - snippet_len + 1)])
    return float(errs.mean()), float(errs.std())


def integrate_relative(rel: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
    """Relative poses T_{i-1,i} (N-1, 4, 4) -> absolute poses (N, 4, 4), W_i = W_{i-1} @ T.

    W_0 is ``initial`` (identity by default).
    """
    rel = np.asarray(rel, dtype=np.float64)
    if rel.ndim != 3 or rel.shape[1:] != (4, 4):
        raise ValueError(f"rel must be (N-1, 4, 4), got {rel.shape}")
    out = np.empty((rel.shape[0] + 1, 4, 4))
    out[0] = np.eye(4) if initial is None else np.asarray(initial, dtype=np.float64)
    for i in range(rel.shape[0]):
        out[i + 1] = out[i] @ rel[i]
    return out


def relative_from_absolute(poses: np.ndarray) -> np.ndarray:
    """Absolute poses (N, 4, 4) -> relative T_{i-1,i} = inv(W_{i-1}) @ W_i, (N-1, 4, 4)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"poses must be (N, 4, 4), got {poses.shape}")
    return np.linalg.inv(poses[:-1]) @ poses[1:]


def path_length(poses_or_positions: np.ndarray) -> float:
    """Total travelled distance (sum of consecutive position steps), metres."""
    p = _positions(poses_or_positions)
    if len(p) < 2:
        return 0.0
    return float(np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1)))
