"""An analytic scene for geometry tests: a textured tilted plane seen by a pinhole camera, with
exact depth, rendered from any pose (shared by the geometry, loss and method tests)."""
import numpy as np

H, W = 64, 96
K = np.array([[60.0, 0, (W - 1) / 2], [0, 60.0, (H - 1) / 2], [0, 0, 1]])
NORMAL = np.array([0.15, -0.35, 1.0]) / np.linalg.norm([0.15, -0.35, 1.0])   # plane n . X = D (target frame)
D = 6.0


def texture(pts):
    """Smooth analytic texture of 3D points (3, N) in the target frame."""
    x, y, z = pts
    return 0.5 + 0.18 * np.sin(3.1 * x + 0.4) + 0.15 * np.sin(2.3 * y - 1.1 * x) + 0.1 * np.cos(1.7 * z + 2.0 * y)


def render(t_cam_tgt):
    """Image (H, W) seen by a camera with pose T_cam_tgt, and its depth (H, W)."""
    rot, trans = t_cam_tgt[:3, :3], t_cam_tgt[:3, 3]
    n_c = rot @ NORMAL
    d_c = D + n_c @ trans
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    rays = np.linalg.inv(K) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])   # z = 1
    lam = d_c / (n_c @ rays)
    pts_c = rays * lam
    pts_t = rot.T @ (pts_c - trans[:, None])
    return texture(pts_t).reshape(H, W), lam.reshape(H, W)
