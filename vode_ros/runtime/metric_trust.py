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
from dataclasses import dataclass

import numpy as np

HFOV_MARGIN = 0.10     # a camera within ±10 % of the training cameras' field of view counts as seen


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


def choose_scale_source(requested: str, raw_meta: dict[str, str], hfov_deg: float, domain: str = "",
                        have_stereo: bool = False, camera_height: float = 0.0) -> ScaleDecision:
    """The scale source to use for ``requested`` (the ``scale_mode`` parameter).

    ``auto``: the model where :func:`model_knows_camera`, else stereo when a right camera is
    configured, else the camera height when it is set, else ``none`` (relative depth, said so).
    Any other mode is the user's explicit choice and is kept, with the trust check as its reason.
    """
    trusted, why = model_knows_camera(raw_meta, hfov_deg, domain)
    if requested != "auto":
        return ScaleDecision(requested, requested == "model" and trusted,
                             f"scale_mode {requested} (set by parameter); model check: {why}")
    if trusted:
        return ScaleDecision("model", True, why)
    if have_stereo:
        return ScaleDecision("stereo", False, f"{why}: scale from the stereo pair")
    if camera_height > 0:
        return ScaleDecision("camera_height", False, f"{why}: scale from the camera height ({camera_height:g} m)")
    return ScaleDecision("none", False, f"{why}: depth is relative (no stereo pair, camera_height not set)")
