"""Whether a metric model's metres can be trusted on this camera, and what to use instead.

A monocular net learns metric depth only for the cameras and the kind of scene it was trained
on: depth scales with the focal length (the run time rescales by fx_camera / vode.train_fx),
and the size of things it has seen (cars, desks) anchors the rest. On a camera whose field of
view lies outside the training cameras', or in a domain it never saw (a driving model on an
indoor drone), its "metres" can be off by 10x while looking confident. This module decides,
from the model metadata and the camera, whether to publish the model's scale or to fall back
to a measured source (stereo, camera height), and says why in words for /vode/status.

Pure Python; the depth node calls :func:`choose_scale_source` once per CameraInfo change.
"""
from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

HFOV_MARGIN = 0.10     # a camera within ±10 % of the training cameras' field of view counts as seen
STEREO_TOLERANCE = 1.25   # model depth within x1.25 of the stereo pair's: its metres hold here
SPREAD_SHARE = 0.6        # a depth spread under 60 % of the training frames' is another kind of scene
SCENE_FRAMES = 5          # frames of evidence before the scene is judged


@dataclass(frozen=True)
class ScaleDecision:
    source: str          # model | stereo | camera_height | none
    trusted: bool        # the model's own metres are used
    reason: str          # one line for logs and /vode/status


def horizontal_fov_deg(k: np.ndarray, width: int) -> float:
    """Horizontal field of view (degrees) of a pinhole camera with intrinsics ``k`` (3, 3)."""
    return math.degrees(2.0 * math.atan(width / (2.0 * float(k[0, 0]))))


def model_knows_camera(raw_meta: dict[str, str], hfov_deg: float, domain: str = "") -> tuple[bool, str]:
    """(True, why) when the model was trained metric on a camera like this one, in this domain.

    ``domain`` is what the user says the camera sees (parameter ``domain``; '' = not said): a
    model recorded for another domain is not trusted; an unsaid domain is taken on the field
    of view alone.
    """
    if raw_meta.get("vode.metric_scale", "false").lower() != "true":
        return False, "the model is not metric (trained monocular without a scale source)"
    trained_domain = raw_meta.get("vode.train_domain", "")
    trained_domains = {d.strip() for d in trained_domain.split(",") if d.strip()}   # a mixed model: several
    if domain and trained_domains and domain not in trained_domains:
        return False, f"the model was trained on {trained_domain} footage, this camera is {domain}"
    if "vode.train_hfov_deg" not in raw_meta:
        return True, "metric model (its metadata records no training camera to compare with)"
    try:
        lo, hi = (float(v) for v in json.loads(raw_meta["vode.train_hfov_deg"]))
    except (ValueError, TypeError):
        return False, "the model's vode.train_hfov_deg metadata is unreadable"
    if not (lo * (1 - HFOV_MARGIN) <= hfov_deg <= hi * (1 + HFOV_MARGIN)):
        return False, (f"this camera's field of view ({hfov_deg:.0f} deg) is outside the training cameras' "
                       f"({lo:.0f}-{hi:.0f} deg)")
    where = f" on {trained_domain} footage" if trained_domain else ""
    return True, f"metric model trained{where} with cameras of {lo:.0f}-{hi:.0f} deg field of view"


@dataclass
class SceneEvidence:
    """What the camera's own frames say about the model's metres."""
    frames: int = 0                       # frames observed
    spread: float = float("nan")          # median over frames of p95/p5 of the model's depth
    stereo_ratio: float = float("nan")    # median stereo / model depth (nan: no stereo pair seen)
    stereo_frames: int = 0


class SceneMonitor:
    """Gathers :class:`SceneEvidence` from the model's depth (and the stereo ratio) of recent frames."""

    def __init__(self, window: int = 30):
        self.spreads: deque[float] = deque(maxlen=window)
        self.ratios: deque[float] = deque(maxlen=window)

    def observe(self, depth: np.ndarray, stereo_ratio: float | None = None) -> None:
        """depth (h, w): the model's own depth of a frame (before any scale); stereo_ratio:
        median(stereo / that depth) when the pair was matched."""
        good = depth[np.isfinite(depth) & (depth > 0)]
        if good.size >= 100:
            p5, p95 = np.percentile(good, [5.0, 95.0])
            self.spreads.append(float(p95 / max(p5, 1e-6)))
        if stereo_ratio is not None and np.isfinite(stereo_ratio) and stereo_ratio > 0:
            self.ratios.append(float(stereo_ratio))

    def evidence(self) -> SceneEvidence:
        return SceneEvidence(len(self.spreads), float(np.median(self.spreads)) if self.spreads else float("nan"),
                             float(np.median(self.ratios)) if self.ratios else float("nan"), len(self.ratios))

    def reset(self) -> None:
        self.spreads.clear()
        self.ratios.clear()


def training_spread(raw_meta: dict[str, str]) -> float | None:
    """The depth spread the model predicts on its training frames (export metadata), or None."""
    try:
        return float(json.loads(raw_meta["vode.train_depth_range"])["spread"])
    except (KeyError, ValueError, TypeError):
        return None


def scene_problem(raw_meta: dict[str, str], scene: SceneEvidence | None, min_frames: int = SCENE_FRAMES) -> str | None:
    """Why this scene says the model's metres do not hold (None: nothing against them, or too
    little evidence yet). See the module doc."""
    if scene is None:
        return None
    if scene.stereo_frames >= min_frames and np.isfinite(scene.stereo_ratio):
        off = 1.0 / scene.stereo_ratio            # model / stereo
        if not (1.0 / STEREO_TOLERANCE <= off <= STEREO_TOLERANCE):
            return f"the stereo pair measures the model's depth x{off:.2f} off (tolerance x{STEREO_TOLERANCE:g})"
    train = training_spread(raw_meta)
    if train and scene.frames >= min_frames and np.isfinite(scene.spread) and scene.spread < SPREAD_SHARE * train:
        return (f"the scene's depth spans x{scene.spread:.1f} (95th/5th percentile) against x{train:.1f} on the "
                "training footage: not the kind of scene the model learned its metres in")
    return None


def choose_scale_source(requested: str, raw_meta: dict[str, str], hfov_deg: float, domain: str = "",
                        have_stereo: bool = False, camera_height: float = 0.0,
                        scene: SceneEvidence | None = None) -> ScaleDecision:
    """The scale source to use for ``requested`` (the ``scale_mode`` parameter).

    ``auto``: in mode stereo (``have_stereo``) the stereo pair; else the model where
    :func:`model_knows_camera` and the scene does not speak against it (:func:`scene_problem`),
    else the camera height when it is set, else ``none`` (relative depth, said so).
    Any other mode is the user's explicit choice and is kept, with the trust check as its reason.
    """
    trusted, why = model_knows_camera(raw_meta, hfov_deg, domain)
    if trusted:
        problem = scene_problem(raw_meta, scene)
        if problem:
            trusted, why = False, f"camera and domain fit the training ones, but {problem}"
    if requested != "auto":
        return ScaleDecision(requested, requested == "model" and trusted,
                             f"scale_mode {requested} (set by parameter); model check: {why}")
    if have_stereo:
        return ScaleDecision("stereo", False, "mode stereo: scale from the stereo pair (the model's own metres only "
                                              f"until a right image arrives); model check: {why}")
    if trusted:
        return ScaleDecision("model", True, why)
    if camera_height > 0:
        return ScaleDecision("camera_height", False, f"{why}: scale from the camera height ({camera_height:g} m)")
    return ScaleDecision("none", False, f"{why}: depth is relative (no stereo pair, camera_height not set)")
