"""A plain classical visual odometry: the bar every odometry figure is shown beside.

Frame to frame, nothing learned, nothing tuned on our sequences, OpenCV defaults where it has them:

- ``rgbd`` / ``stereo``: ORB (2,000) on both frames, brute-force Hamming matching with
  cross-check, the previous frame's depth at each match (the sensor's, or SGBM of the stereo pair
  from ``vode_ros.core.stereo_depth``), PnP-RANSAC at 2 px, Levenberg-Marquardt on the inliers;
- ``mono``: the same matches, rotation and direction of travel from the essential matrix
  (RANSAC, 1 px, recoverPose), the length from the PnP motion on the given depth (the depth
  net's: the same length source as the estimator it is compared with).

Where a frame pair gives fewer than ``min_inliers`` inliers the previous motion is repeated
(constant velocity), as a plain estimator would. Depth maps may have any resolution (they are
sampled at the nearest pixel centre); 0 / NaN / inf is no depth.

    vo = ClassicalVO(k, mode="rgbd")
    for image, depth in frames:
        t_prev_cur = vo.step(image, depth)      # (4, 4), identity on the first frame

numpy + OpenCV.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vode_ros.core.geometry import backproject_points, invert_se3

MODES = ("stereo", "rgbd", "mono")


@dataclass
class ClassicalStats:
    pairs: int = 0
    failures: int = 0                        # pairs that repeated the previous motion
    inliers: list[int] = field(default_factory=list)


def _grey(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def _depth_at(depth: np.ndarray, uv: np.ndarray, image_wh: tuple[int, int]) -> np.ndarray:
    """Depth (Hd, Wd) at (N, 2) pixels of an image of size (W, H), nearest pixel centre; NaN = none."""
    hd, wd = depth.shape
    u = np.clip(np.rint((uv[:, 0] + 0.5) * wd / image_wh[0] - 0.5), 0, wd - 1).astype(int)
    v = np.clip(np.rint((uv[:, 1] + 0.5) * hd / image_wh[1] - 0.5), 0, hd - 1).astype(int)
    z = depth[v, u].astype(np.float64)
    return np.where(np.isfinite(z) & (z > 0.05), z, np.nan)


class ClassicalVO:
    def __init__(self, k: np.ndarray, mode: str = "rgbd", n_features: int = 2000, ransac_px: float = 2.0,
                 min_inliers: int = 10):
        import cv2

        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.k, self.mode, self.ransac_px, self.min_inliers = np.asarray(k, np.float64), mode, ransac_px, min_inliers
        self.orb = cv2.ORB_create(n_features)
        self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
        self.stats = ClassicalStats()
        self._prev = None                    # (keypoint positions (N, 2), descriptors, depth)
        self._last = np.eye(4)               # the previous motion T_prev_cur

    def step(self, image: np.ndarray, depth: np.ndarray | None) -> np.ndarray:
        """(H, W[, 3]) uint8 image and its depth (metres, any resolution) -> T_prev_cur (4, 4)."""
        kps, desc = self.orb.detectAndCompute(_grey(image), None)
        uv = np.array([kp.pt for kp in kps], np.float64).reshape(-1, 2)
        prev, self._prev = self._prev, (uv, desc, depth)
        if prev is None:
            return np.eye(4)
        self.stats.pairs += 1
        t_cur_prev = self._solve(prev, uv, desc, (image.shape[1], image.shape[0]))
        if t_cur_prev is None:
            self.stats.failures += 1
            return self._last.copy()
        self._last = invert_se3(t_cur_prev)
        return self._last.copy()

    def _solve(self, prev, uv: np.ndarray, desc, image_wh: tuple[int, int]) -> np.ndarray | None:
        import cv2

        uv0, desc0, depth0 = prev
        if desc0 is None or desc is None or depth0 is None:
            return None
        matches = self.matcher.match(desc0, desc)
        a = uv0[[m.queryIdx for m in matches]]
        b = uv[[m.trainIdx for m in matches]]
        z = _depth_at(depth0, a, image_wh)
        has = np.isfinite(z)
        if has.sum() < max(self.min_inliers, 6):
            return None
        p3 = backproject_points(a[has].T, z[has], self.k).T       # the previous keypoints lifted, (M, 3)
        ok, rvec, tvec, inl = cv2.solvePnPRansac(p3, b[has], self.k, None, iterationsCount=200,
                                                 reprojectionError=self.ransac_px, confidence=0.999)
        if not ok or inl is None or len(inl) < self.min_inliers:
            return None
        inl = inl.ravel()
        rvec, tvec = cv2.solvePnPRefineLM(p3[inl], b[has][inl], self.k, None, rvec, tvec)
        self.stats.inliers.append(len(inl))
        t = np.eye(4)
        t[:3, :3], t[:3, 3] = cv2.Rodrigues(rvec)[0], tvec.ravel()
        if self.mode == "mono":
            try:
                e, mask = cv2.findEssentialMat(a, b, self.k, method=cv2.RANSAC, prob=0.999, threshold=1.0)
                if e is None or e.shape != (3, 3):
                    return t                  # no essential matrix: the PnP motion
                _, r, direction, _ = cv2.recoverPose(e, a, b, self.k, mask=mask)
            except cv2.error:                 # degenerate matches (a solver without real roots): the PnP motion
                return t
            t[:3, :3], t[:3, 3] = r, direction.ravel() * np.linalg.norm(t[:3, 3])
        return t


def run_classical(images: list[np.ndarray], depths: list[np.ndarray | None], k: np.ndarray, mode: str
                  ) -> tuple[np.ndarray, ClassicalStats]:
    """The baseline over a sequence -> ((N, 4, 4) poses, frame 0 at the origin; statistics)."""
    vo = ClassicalVO(k, mode)
    poses = [np.eye(4)]
    for i, (image, depth) in enumerate(zip(images, depths)):
        t = vo.step(image, depth)
        if i:
            poses.append(poses[-1] @ t)
    return np.array(poses), vo.stats
