"""Synthetic textured street scenes with exact ground truth, ray cast in numpy (no OpenGL).

A scene is a street in a *scene frame* that is an optical frame (x right, y down, z forward):

- a ground plane at ``y = +camera_height`` (the nominal camera sits at ``y = 0``);
- two side walls at ``x = ±wall_distance``, made of segments (``building_length`` m long)
  of random height and material, so the skyline and the colours change along the street;
- an end wall across the street beyond the last frame;
- boxes standing on the ground (random size, yaw and material) on both sides of the
  driving corridor;
- a sky (ray direction only, no depth: GT depth 0 there).

Surfaces carry procedural textures anchored to the surface (value noise of several octaves,
smoothed checker boards, stripes) with plenty of high-frequency detail for photometric
losses. Textures are *band-limited per pixel*: every octave / checker edge is faded out by
the footprint of the pixel on the surface (distance / fx / |cos incidence|), which is the
analytic equivalent of mip-mapping. So each frame is close to an ideally filtered image of
the same world, warping one frame into another with the exact depth and pose reproduces it
(up to bilinear interpolation and occlusions), and there is little aliasing. Shading is
Lambertian under a fixed directional light (view independent), no noise unless asked.

The camera moves forward (``speed`` m per frame) with small smooth turns (heading is a sum
of two sinusoids of amplitude ``max_yaw_deg``), small pitch / roll wobble and height bob.

Outputs per frame: left and right images (uint8, grey (H, W) or RGB (H, W, 3)), the z-depth
of the left (and right) camera (float32 metres, 0 = sky) and the cam0 poses relative to
frame 0 (KITTI convention: ``W_k`` maps camera-k points into the frame-0 camera frame;
the relative pose used by the nets is ``T_{k,k+1} = inv(W_k) @ W_{k+1}``).

Deterministic given ``seed``. Defaults: 416x128, 30 frames, grey, baseline 0.54 m,
fx = fy = 0.5767 W (KITTI's field of view).

``write_kitti_layout`` writes a KITTI-odometry folder that ``vode_ros.core.kitti.load_sequence``
reads unchanged, plus ``depth/NNNNNN.npy`` (left GT depth) and ``synthetic.json`` (config).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vode_ros.core.geometry import backproject_points, euler2mat, invert_se3, project

from .synthetic_textures import Material, Noise, random_material, shade_pattern

SKY = -1          # surface id of the sky
GROUND, WALL_L, WALL_R, END_WALL = 0, 1, 2, 3
FIRST_BOX = 4     # boxes have ids FIRST_BOX + i


@dataclass
class SynthConfig:
    """Everything that defines a synthetic sequence (all lengths in metres, angles in degrees)."""

    frames: int = 30
    width: int = 416
    height: int = 128
    fx: float | None = None          # default 0.5767 * width (KITTI's horizontal field of view)
    fy: float | None = None          # default fx
    cx: float | None = None          # default (width - 1) / 2
    cy: float | None = None          # default (height - 1) / 2
    baseline: float = 0.54           # right camera at +baseline along the left camera's x
    color: str = "gray"              # gray | rgb
    seed: int = 0
    fps: float = 10.0
    # motion
    speed: float = 1.0               # metres per frame
    max_yaw_deg: float = 6.0         # amplitude of the heading oscillation
    yaw_period: float = 60.0         # frames of the main heading oscillation
    wobble_deg: float = 0.4          # pitch / roll amplitude
    bob: float = 0.02                # height bob amplitude
    # scene
    camera_height: float = 1.65
    wall_distance: float = 7.0
    wall_height: tuple[float, float] = (3.0, 9.0)   # per building segment, random in range
    building_length: float = 9.0
    corridor: float = 2.3            # half width kept free of boxes around the path
    box_density: float = 0.7         # boxes per metre of street
    box_size: tuple[float, float] = (0.4, 2.2)
    end_wall_margin: float = 40.0    # end wall this far beyond the last frame
    # rendering
    min_wavelength_px: float = 1.5   # texture detail fades out between 2x and 1x this many pixels
    supersample: int = 1             # s x s rays per pixel for the colour (depth: centre ray)
    noise_std: float = 0.0           # additive Gaussian image noise (grey levels)

    def intrinsics(self) -> np.ndarray:
        fx = float(self.fx) if self.fx else 0.5767 * self.width
        fy = float(self.fy) if self.fy else fx
        cx = float(self.cx) if self.cx is not None else (self.width - 1) / 2.0
        cy = float(self.cy) if self.cy is not None else (self.height - 1) / 2.0
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


@dataclass
class SyntheticSequence:
    left: np.ndarray            # (N, H, W) or (N, H, W, 3) uint8
    right: np.ndarray           # same
    depth: np.ndarray           # (N, H, W) float32, left z-depth in metres, 0 = sky
    depth_right: np.ndarray     # (N, H, W) float32, right camera
    poses: np.ndarray           # (N, 4, 4) cam0 poses in the frame-0 camera frame
    k: np.ndarray               # (3, 3)
    baseline: float
    times: np.ndarray           # (N,) seconds
    config: SynthConfig

    def __len__(self) -> int:
        return len(self.left)

    def relative(self, target: int, source: int) -> np.ndarray:
        """T_source_target: maps target-camera points into the source camera."""
        return invert_se3(self.poses[source]) @ self.poses[target]


# --------------------------------------------------------------------------- scene

@dataclass
class _Box:
    center: np.ndarray   # (3,) scene frame, centre of the box
    half: np.ndarray     # (3,) half extents in the box frame
    rot: np.ndarray      # (3, 3) box frame -> scene frame (yaw about y)
    material: int


class Scene:
    """The static world of one sequence (built from a config and its seed)."""

    def __init__(self, cfg: SynthConfig, path_positions: np.ndarray, rng: np.random.Generator):
        self.cfg = cfg
        self.noise = Noise(rng)
        self.materials: list[Material] = [random_material(rng, "ground")]
        n_wall_mats = 10
        self.wall_mat0 = len(self.materials)
        self.materials += [random_material(rng, "wall") for _ in range(n_wall_mats)]
        self.end_mat = len(self.materials)
        self.materials.append(random_material(rng, "wall"))
        z_max = float(path_positions[:, 2].max())
        z_min = float(path_positions[:, 2].min())
        self.z_end = z_max + cfg.end_wall_margin
        self.end_height = float(rng.uniform(*cfg.wall_height))
        n_seg = int(np.ceil((self.z_end + 20.0) / cfg.building_length)) + 4
        self.seg_z0 = -20.0
        self.seg_height = {side: rng.uniform(*cfg.wall_height, n_seg).astype(np.float32) for side in (0, 1)}
        self.seg_mat = {side: rng.integers(0, n_wall_mats, n_seg) + self.wall_mat0 for side in (0, 1)}
        # boxes along the street, both sides, outside the corridor around the path
        self.boxes: list[_Box] = []
        street = self.z_end - (z_min - 10.0)
        n_boxes = rng.poisson(cfg.box_density * street)
        for _ in range(n_boxes):
            z = rng.uniform(z_min - 10.0, self.z_end - 2.0)
            path_x = float(np.interp(z, path_positions[:, 2], path_positions[:, 0]))
            half = rng.uniform(cfg.box_size[0], cfg.box_size[1], 3) / 2.0
            half[1] = rng.uniform(cfg.box_size[0], cfg.box_size[1] * 1.4) / 2.0
            yaw = rng.uniform(-0.6, 0.6)
            reach = np.hypot(half[0], half[2])
            side = rng.choice([-1.0, 1.0])
            lo = path_x + side * (cfg.corridor + reach)
            hi = side * (cfg.wall_distance - reach)
            if side * (hi - lo) <= 0:
                continue
            x = rng.uniform(min(lo, hi), max(lo, hi))
            c, s = np.cos(yaw), np.sin(yaw)
            rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
            center = np.array([x, cfg.camera_height - half[1], z])
            self.materials.append(random_material(rng, "box"))
            self.boxes.append(_Box(center, half, rot, len(self.materials) - 1))
        light = np.array([0.35, -1.0, 0.45])
        self.light = light / np.linalg.norm(light)

    # ---- ray casting ------------------------------------------------------------
    @staticmethod
    def _box_window(box: "_Box", origin: np.ndarray, cam_rot: np.ndarray, k: np.ndarray,
                    grid_shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """Pixel rows/cols (v0, v1, u0, u1) that can see the box; None when it is out of view."""
        height, width = grid_shape
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
        corners = box.center + (signs * box.half) @ box.rot.T          # (8, 3) scene frame
        cam = (corners - origin) @ cam_rot                              # camera frame
        if np.all(cam[:, 2] <= 1e-3):
            return None
        if np.any(cam[:, 2] <= 0.05):                                   # straddles the camera plane
            return 0, height, 0, width
        (u, v), _ = project(cam.T, k)                                  # all in front (checked above)
        u0, u1 = int(np.floor(u.min())) - 1, int(np.ceil(u.max())) + 2
        v0, v1 = int(np.floor(v.min())) - 1, int(np.ceil(v.max())) + 2
        u0, v0 = max(u0, 0), max(v0, 0)
        u1, v1 = min(u1, width), min(v1, height)
        if u0 >= u1 or v0 >= v1:
            return None
        return v0, v1, u0, u1

    def cast(self, origin: np.ndarray, cam_rot: np.ndarray, dirs: np.ndarray, k: np.ndarray):
        """origin (3,), camera rotation (3, 3), dirs (H, W, 3) scene-frame ray directions of
        the pixels (not normalised; z = 1 in the camera frame), k the intrinsics the rays
        were made with (for the box culling; sub-pixel ray offsets must stay within 1 px).

        Returns (H, W) arrays: t, the ray parameter of the nearest hit (inf for sky), the
        surface id and, for box hits, the face axis (0, 1, 2 in the box frame; -1 otherwise).
        """
        cfg = self.cfg
        grid_shape = dirs.shape[:2]
        eps = 1e-4
        t_best = np.full(grid_shape, np.inf, np.float64)
        sid = np.full(grid_shape, SKY, np.int32)
        axis = np.full(grid_shape, -1, np.int8)
        ox, oy, oz = origin
        dx, dy, dz = dirs[..., 0], dirs[..., 1], dirs[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            # ground
            t = (cfg.camera_height - oy) / dy
            hit = (t > eps) & (t < t_best)
            t_best[hit], sid[hit] = t[hit], GROUND
            # side walls (finite height per segment)
            for side, x_w, idx in ((0, -cfg.wall_distance, WALL_L), (1, cfg.wall_distance, WALL_R)):
                t = (x_w - ox) / dx
                y = oy + t * dy
                z = oz + t * dz
                seg = np.clip(((z - self.seg_z0) / cfg.building_length).astype(np.int64), 0,
                              len(self.seg_height[side]) - 1)
                top = cfg.camera_height - self.seg_height[side][seg]
                hit = (t > eps) & (t < t_best) & (y >= top) & np.isfinite(t)
                t_best[hit], sid[hit] = t[hit], idx
            # end wall
            t = (self.z_end - oz) / dz
            y = oy + t * dy
            hit = (t > eps) & (t < t_best) & (y >= cfg.camera_height - self.end_height)
            t_best[hit], sid[hit] = t[hit], END_WALL
            # boxes: slab test in the box frame, only for the rays inside the box's image bbox
            for i, box in enumerate(self.boxes):
                window = self._box_window(box, origin, cam_rot, k, grid_shape)
                if window is None:
                    continue
                v0, v1, u0, u1 = window
                sl = (slice(v0, v1), slice(u0, u1))
                d_l = dirs[sl] @ box.rot                         # (h, w, 3) = R^T d
                o_l = box.rot.T @ (origin - box.center)
                t_near = np.full(d_l.shape[:2], -np.inf)
                t_far = np.full(d_l.shape[:2], np.inf)
                near_axis = np.zeros(d_l.shape[:2], np.int8)
                for a in range(3):
                    inv = 1.0 / d_l[..., a]
                    t1 = (-box.half[a] - o_l[a]) * inv
                    t2 = (box.half[a] - o_l[a]) * inv
                    lo = np.minimum(t1, t2)
                    bigger = lo > t_near
                    near_axis[bigger] = a
                    t_near = np.maximum(t_near, lo)
                    t_far = np.minimum(t_far, np.maximum(t1, t2))
                tb = t_best[sl]
                hit = (t_near <= t_far) & (t_near > eps) & (t_near < tb)
                if np.any(hit):
                    tb[hit] = t_near[hit]
                    sid[sl][hit] = FIRST_BOX + i
                    axis[sl][hit] = near_axis[hit]
        return t_best, sid, axis

    def shade(self, origin: np.ndarray, dirs: np.ndarray, t: np.ndarray, sid: np.ndarray,
              axis: np.ndarray, pixel_angle: float) -> np.ndarray:
        """Colour (N, 3) float in [0, 1] of each ray's hit (sky colour where sid == SKY).

        Inputs as returned by :meth:`cast` (any shape; flattened here)."""
        cfg = self.cfg
        dirs, t, sid, axis = dirs.reshape(-1, 3), t.reshape(-1), sid.reshape(-1), axis.reshape(-1)
        n = dirs.shape[0]
        out = np.zeros((n, 3), np.float32)
        sky = sid == SKY
        if np.any(sky):
            d = dirs[sky] / np.linalg.norm(dirs[sky], axis=1, keepdims=True)
            elev = np.clip(-d[:, 1], 0.0, 1.0)[:, None]
            out[sky] = (np.array([0.78, 0.86, 0.95]) * (1 - elev) + np.array([0.45, 0.6, 0.85]) * elev)
        hit = ~sky
        if not np.any(hit):
            return out
        d = dirs[hit]
        th = t[hit]
        p = origin[None, :] + th[:, None] * d
        s = sid[hit]
        ax = axis[hit]
        u = np.zeros(len(th), np.float64)
        v = np.zeros(len(th), np.float64)
        normal = np.zeros((len(th), 3), np.float64)
        mat = np.zeros(len(th), np.int64)
        # ground: (x, z)
        m = s == GROUND
        u[m], v[m] = p[m, 0], p[m, 2]
        normal[m] = (0.0, -1.0, 0.0)
        mat[m] = 0
        for side, idx, nx in ((0, WALL_L, 1.0), (1, WALL_R, -1.0)):
            m = s == idx
            if np.any(m):
                u[m], v[m] = p[m, 2] + 1000.0 * side, p[m, 1]
                normal[m] = (nx, 0.0, 0.0)
                seg = np.clip(((p[m, 2] - self.seg_z0) / cfg.building_length).astype(np.int64), 0,
                              len(self.seg_mat[side]) - 1)
                mat[m] = self.seg_mat[side][seg]
        m = s == END_WALL
        u[m], v[m] = p[m, 0], p[m, 1]
        normal[m] = (0.0, 0.0, -1.0)
        mat[m] = self.end_mat
        for i in np.unique(s[s >= FIRST_BOX]):
            box = self.boxes[i - FIRST_BOX]
            m = s == i
            local = (p[m] - box.center) @ box.rot           # box frame coordinates
            a = ax[m]
            nl = np.zeros((int(m.sum()), 3))
            rows = np.arange(len(a))
            nl[rows, a] = np.sign(local[rows, a])
            normal[m] = nl @ box.rot.T
            # face coordinates: the two box axes other than the face axis
            uu = np.where(a == 0, local[:, 2], local[:, 0])
            vv = np.where(a == 1, local[:, 2], local[:, 1])
            u[m] = uu + 37.0 * a + 3.0 * (i - FIRST_BOX)
            v[m] = vv
            mat[m] = box.material
        # footprint of one pixel on the surface (metres): distance / fx / sqrt(|cos incidence|),
        # the geometric mean of the two axes of the (elongated) footprint ellipse
        dist = th * np.linalg.norm(d, axis=1)
        cos_inc = np.abs(np.sum(normal * d, axis=1)) / np.linalg.norm(d, axis=1)
        footprint = (dist * pixel_angle / np.sqrt(np.maximum(cos_inc, 0.02))).astype(np.float32)
        pattern = shade_pattern(self.noise, self.materials, mat, u.astype(np.float32),
                                 v.astype(np.float32), footprint, cfg.min_wavelength_px)
        ca = np.array([mm.color_a for mm in self.materials], np.float32)[mat]
        cb = np.array([mm.color_b for mm in self.materials], np.float32)[mat]
        col = ca + pattern[:, None] * (cb - ca)
        lambert = np.clip(normal @ self.light, 0.0, 1.0)      # self.light points towards the light
        shade = (0.5 + 0.5 * lambert).astype(np.float32)
        out[hit] = col * shade[:, None]
        return out


# --------------------------------------------------------------------------- trajectory

def make_trajectory(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """(N, 4, 4) camera-to-scene poses: forward motion with smooth small turns and wobble."""
    n = cfg.frames
    k = np.arange(n, dtype=np.float64)
    ph = rng.uniform(0, 2 * np.pi, 6)
    yaw_amp = np.deg2rad(cfg.max_yaw_deg)
    yaw = yaw_amp * (0.7 * np.sin(2 * np.pi * k / cfg.yaw_period + ph[0])
                     + 0.3 * np.sin(2 * np.pi * k / (cfg.yaw_period * 0.37) + ph[1]))
    wob = np.deg2rad(cfg.wobble_deg)
    pitch = wob * np.sin(2 * np.pi * k / 13.0 + ph[2])
    roll = wob * np.sin(2 * np.pi * k / 17.0 + ph[3])
    bob = cfg.bob * np.sin(2 * np.pi * k / 7.0 + ph[4])
    poses = np.tile(np.eye(4), (n, 1, 1))
    pos = np.zeros(3)
    for i in range(n):
        if i > 0:
            heading = 0.5 * (yaw[i] + yaw[i - 1])
            pos = pos + cfg.speed * np.array([np.sin(heading), 0.0, np.cos(heading)])
        # optical frame: yaw about y, pitch about x, roll about z -> euler (rx, ry, rz)
        poses[i, :3, :3] = euler2mat([pitch[i], yaw[i], roll[i]])
        poses[i, :3, 3] = pos + np.array([0.0, bob[i], 0.0])
    return poses


# --------------------------------------------------------------------------- rendering

def _pixel_rays(k: np.ndarray, width: int, height: int, sub: int) -> list[np.ndarray]:
    """Camera-frame rays K^-1 [u, v, 1] (z = 1, so the ray parameter is the z-depth).

    Returns (H, W, 3) arrays: the pixel centres, then the s x s sub-pixel samples (s > 1).
    """
    offs = [(0.0, 0.0)]
    if sub > 1:
        g = (np.arange(sub) + 0.5) / sub - 0.5
        offs += [(a, b) for b in g for a in g]
    v, u = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    ones = np.ones(u.size)
    return [backproject_points(np.stack([u.ravel() + du, v.ravel() + dv]), ones, k).T.reshape(height, width, 3)
            for du, dv in offs]


def render_view(scene: Scene, cam_to_scene: np.ndarray, k: np.ndarray, width: int, height: int,
                supersample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """One view -> (RGB float32 (H, W, 3) in [0, 1], z-depth float32 (H, W), 0 = sky).

    Depth is that of the pixel-centre ray; with ``supersample`` s > 1 the colour is the mean
    of s x s sub-pixel rays (anti-aliased object edges).
    """
    rays = _pixel_rays(k, width, height, supersample)
    rot = cam_to_scene[:3, :3]
    origin = cam_to_scene[:3, 3].astype(np.float64)
    pixel_angle = 1.0 / float(np.sqrt(k[0, 0] * k[1, 1]))
    d = rays[0] @ rot.T
    t, sid, axis = scene.cast(origin, rot, d, k)
    depth = np.where(sid == SKY, 0.0, t).astype(np.float32)
    if supersample <= 1:
        img = scene.shade(origin, d, t, sid, axis, pixel_angle)
    else:
        img = np.zeros((width * height, 3), np.float32)
        for r in rays[1:]:
            d = r @ rot.T
            t, sid, axis = scene.cast(origin, rot, d, k)
            img += scene.shade(origin, d, t, sid, axis, pixel_angle / supersample)
        img /= len(rays) - 1
    return img.reshape(height, width, 3), depth


def _to_uint8(img: np.ndarray, color: str, rng: np.random.Generator | None, noise_std: float) -> np.ndarray:
    if color == "gray":
        x = img @ np.array([0.299, 0.587, 0.114], np.float32)
    elif color == "rgb":
        x = img
    else:
        raise ValueError(f"color must be 'gray' or 'rgb', got {color!r}")
    x = x * 255.0
    if noise_std > 0 and rng is not None:
        x = x + rng.normal(0.0, noise_std, x.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def generate_sequence(cfg: SynthConfig | None = None, progress: bool | None = False,
                      **overrides) -> SyntheticSequence:
    """Render a sequence; ``overrides`` replace fields of ``cfg`` (or of the defaults).

    ``progress``: tqdm bar on stderr (None: only on a terminal)."""
    cfg = dataclasses.replace(cfg or SynthConfig(), **overrides)
    if cfg.frames < 1 or cfg.width < 8 or cfg.height < 8:
        raise ValueError(f"need frames >= 1 and an image of at least 8x8, got {cfg.frames} frames, "
                         f"{cfg.width}x{cfg.height}")
    rng = np.random.default_rng(cfg.seed)
    traj = make_trajectory(cfg, rng)
    scene = Scene(cfg, traj[:, :3, 3], rng)
    noise_rng = np.random.default_rng(cfg.seed + 7919)
    k = cfg.intrinsics()
    right_offset = np.eye(4)
    right_offset[0, 3] = cfg.baseline
    lefts, rights, depths, depths_r = [], [], [], []
    it = range(cfg.frames)
    if progress is not False:
        from tqdm import tqdm
        it = tqdm(it, desc="render", unit="frame", disable=None if progress is None else not progress)
    for i in it:
        for cam, imgs, deps in ((traj[i], lefts, depths), (traj[i] @ right_offset, rights, depths_r)):
            img, dep = render_view(scene, cam, k, cfg.width, cfg.height, cfg.supersample)
            imgs.append(_to_uint8(img, cfg.color, noise_rng, cfg.noise_std))
            deps.append(dep)
    w0_inv = invert_se3(traj[0])
    poses = np.einsum("ij,njk->nik", w0_inv, traj)
    return SyntheticSequence(
        left=np.stack(lefts), right=np.stack(rights), depth=np.stack(depths), depth_right=np.stack(depths_r),
        poses=poses, k=k, baseline=float(cfg.baseline),
        times=np.arange(cfg.frames, dtype=np.float64) / cfg.fps, config=cfg)


# --------------------------------------------------------------------------- KITTI layout

def _calib_line(name: str, p: np.ndarray) -> str:
    return f"{name}: " + " ".join(f"{x:.12e}" for x in np.asarray(p).reshape(-1)) + "\n"


def write_kitti_layout(out_dir: str | Path, seq: SyntheticSequence | None = None,
                       cfg: SynthConfig | None = None, progress: bool | None = False, **overrides) -> Path:
    """Write a KITTI-odometry folder readable by ``vode_ros.core.kitti.load_sequence``.

    Grey sequences go to image_0/ + image_1/ (calib P0, P1); RGB ones to image_2/ + image_3/
    (calib P2, P3; P0/P1 are written too, with the same numbers). P_right[0, 3] = -fx * b.
    Also writes times.txt, poses.txt (cam0 pose in frame-0 coordinates, 3x4 row-major),
    depth/NNNNNN.npy (float32 z-depth of the left camera, metres, 0 = sky) and
    synthetic.json (the generator config). Renders the sequence first unless ``seq`` is given.
    """
    import cv2

    if seq is None:
        seq = generate_sequence(cfg, progress=progress, **overrides)
    out = Path(out_dir)
    color = seq.config.color
    left_dir, right_dir = ("image_0", "image_1") if color == "gray" else ("image_2", "image_3")
    for sub in (left_dir, right_dir, "depth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for i in range(len(seq)):
        for sub, img in ((left_dir, seq.left[i]), (right_dir, seq.right[i])):
            arr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(out / sub / f"{i:06d}.png"), arr):
                raise OSError(f"could not write {out / sub / f'{i:06d}.png'}")
        np.save(out / "depth" / f"{i:06d}.npy", seq.depth[i].astype(np.float32))
    p_left = np.zeros((3, 4))
    p_left[:, :3] = seq.k
    p_right = p_left.copy()
    p_right[0, 3] = -seq.k[0, 0] * seq.baseline
    text = (_calib_line("P0", p_left) + _calib_line("P1", p_right)
            + _calib_line("P2", p_left) + _calib_line("P3", p_right))
    (out / "calib.txt").write_text(text)
    (out / "times.txt").write_text("".join(f"{t:.6e}\n" for t in seq.times))
    (out / "poses.txt").write_text(
        "".join(" ".join(f"{x:.12e}" for x in p[:3, :].reshape(-1)) + "\n" for p in seq.poses))
    meta = dataclasses.asdict(seq.config)
    meta.update(generator="vode_training.data.synthetic", k=seq.k.tolist(), baseline=seq.baseline,
                depth="depth/NNNNNN.npy: float32 z-depth of the left camera in metres, 0 = sky")
    (out / "synthetic.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
