"""KITTI Velodyne -> depth map: the camera offset of a rectified P (P2 = K [I | t]) is kept when the
projection goes through core.geometry, as SfMLearner's P @ Tr @ [x, y, z, 1]^T gives it."""
from __future__ import annotations

import numpy as np

from vode_ros.core.depth_truth import velodyne_depth_map

# KITTI odometry 00: P2 (left colour camera, 44.85 px offset) and Tr (Velodyne -> cam0).
P2 = np.array([[718.856, 0.0, 607.1928, 45.38225], [0.0, 718.856, 185.2157, -0.1130887],
               [0.0, 0.0, 1.0, 0.003779761]])
TR = np.array([[4.276802e-04, -9.999672e-01, -8.084491e-03, -1.198459e-02],
               [-7.210626e-03, 8.081198e-03, -9.999413e-01, -5.403984e-02],
               [9.999738e-01, 4.859485e-04, -7.206933e-03, -2.921968e-01]])
SIZE = (1241, 376)


def _reference(scan: np.ndarray) -> np.ndarray:
    """The direct formula: every point through the 3x4 P times the 4x4 Tr, nearest point per pixel."""
    pts = scan[scan[:, 0] >= 0, :3]
    im = np.c_[pts, np.ones(len(pts))] @ (P2 @ np.vstack([TR, [0, 0, 0, 1]])).T
    u, v = np.round(im[:, 0] / im[:, 2]) - 1, np.round(im[:, 1] / im[:, 2]) - 1
    ok = (im[:, 2] > 0) & (u >= 0) & (v >= 0) & (u < SIZE[0]) & (v < SIZE[1])
    depth = np.full(SIZE[1] * SIZE[0], np.inf)
    np.minimum.at(depth, (v[ok] * SIZE[0] + u[ok]).astype(np.int64), im[ok, 2])
    depth[~np.isfinite(depth)] = 0.0
    return depth.reshape(SIZE[1], SIZE[0]).astype(np.float32)


def test_velodyne_depth_equals_the_direct_projection():
    rng = np.random.default_rng(0)
    scan = np.c_[rng.uniform(-5, 60, 20000), rng.uniform(-20, 20, 20000), rng.uniform(-2, 3, 20000),
                 rng.uniform(0, 1, 20000)]
    ours = velodyne_depth_map(scan, TR, P2, SIZE)
    ref = _reference(scan)
    assert (ours > 0).sum() > 2000
    np.testing.assert_array_equal(ours > 0, ref > 0)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
