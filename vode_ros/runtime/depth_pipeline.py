"""One camera frame -> metric depth: the depth node's whole per-frame work without ROS.

    pipeline = DepthPipeline(depth_model, DepthSettings(scale_mode="auto", domain="driving"))
    out = pipeline.step(image, "rgb8", stamp_ns, k, right=right_grey, baseline=0.54)
    out.depth, out.k_net, out.scale, out.notes

Per frame: preprocessing (OnnxModel.preprocess), inference (DepthNet: inverse depth -> metres,
focal-length rescaling for metric models), the scale (runtime.scale.ScaleEstimator: model | none |
stereo | stereo_start | camera_height; ``auto`` decided per model, camera and scene by
runtime.metric_trust, which the frames' evidence can overturn: the model/stereo ratio, the
predicted depth's spread against the training frames'), and the depth times that scale. The
stereo scale reads the pair's SGBM map, and the net its input, from a FrameShare: in `vode run`
the odometry's pipeline reads the same, one match and one preprocessing per frame.

With a stereo pair (``fuse_stereo``, default on) the published depth is the fusion of the pair's
SGBM and the scaled net (core.depth_fusion: SGBM where it is valid, the net in the holes and far
range) with a per-pixel confidence (0..1, ``DepthStep.confidence``); without a right image the
scaled net alone, confidence None.

numpy + OpenCV + ONNX Runtime; no ROS, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vode_ros.core.image_codec import to_gray
from vode_ros.runtime.inference import DepthNet, OnnxModel
from vode_ros.runtime.metric_trust import (SceneMonitor, ScaleDecision, choose_scale_source, horizontal_fov_deg,
                                           scene_problem)
from vode_ros.runtime.scale import ScaleEstimator, median_ratio, relative_because
from vode_ros.runtime.frame_share import FrameShare


@dataclass
class DepthSettings:
    scale_mode: str = "auto"          # auto | model | none | stereo | stereo_start | camera_height
    domain: str = ""                  # what the camera sees ('' = not said): metric_trust
    camera_height: float = 1.65       # m, scale_mode camera_height
    scale_smoothing: float = 0.9      # EMA weight of the previous scale estimate
    have_stereo: bool = False         # a right camera is configured (mode stereo)
    fuse_stereo: bool = True          # publish SGBM fused with the scaled net (and a confidence) where a pair arrives


@dataclass
class DepthStep:
    depth: np.ndarray                 # (h, w) float32 metres (or relative, see scale_source) at the net's size
    k_net: np.ndarray                 # (3, 3) K at that size
    net_input: np.ndarray             # (C, h, w) the net's input (the adaptation buffer keeps it)
    scale: float
    notes: list[tuple[str, str]] = field(default_factory=list)   # (info | warning, message) for the log
    confidence: np.ndarray | None = None   # (h, w) float32 0..1 of the fused depth (stereo pair), else None


class DepthPipeline:
    """The per-frame depth (see the module docstring). One caller steps it; settings change between
    steps through :meth:`set_scale_mode` and the scaler's fields."""

    def __init__(self, model: OnnxModel, settings: DepthSettings, shared: FrameShare | None = None):
        self.settings = settings
        self.shared = shared or FrameShare()      # the net input and the SGBM map, once per frame
        self.decision: ScaleDecision | None = None
        self._decision_key: tuple | None = None
        self._last_stamp_ns: int | None = None
        self.scene = SceneMonitor()                # what the frames say about the model's metres
        self.set_model(model)
        self.set_scale_mode(settings.scale_mode, settings.domain)

    @property
    def model(self) -> OnnxModel:
        return self.net.model

    def set_model(self, model: OnnxModel) -> None:
        self.net = DepthNet(model)
        self._decision_key = None                  # another model: auto decides again
        self.scene.reset()

    def set_scale_mode(self, mode: str, domain: str | None = None) -> None:
        """A new scale source starts from scratch (a stereo scale must not leak into camera_height)."""
        s = self.settings
        s.scale_mode = mode
        if domain is not None:
            s.domain = domain
        self._decision_key = None
        self.scaler = ScaleEstimator("none" if mode == "auto" else mode, camera_height=s.camera_height,
                                     smoothing=s.scale_smoothing)

    def scale_info(self) -> tuple[str, float]:
        """(what vode/status says the scale is, the factor)."""
        if self.scaler.mode == "model" and not self.model.meta.metric_scale:
            return relative_because("the model is not metric"), self.scaler.scale
        if self.settings.scale_mode == "auto" and self.decision is not None:
            d = self.decision
            label = "model (metric)" if d.source == "model" else self.scaler.source()
            return f"auto: {label}; {d.reason}", self.scaler.scale
        return self.scaler.source(), self.scaler.scale

    def step(self, image: np.ndarray, encoding: str, stamp_ns: int, k: np.ndarray, right: np.ndarray | None = None,
             baseline: float | None = None) -> DepthStep:
        """image (H, W[, 3]) uint8 rectified in ``encoding``, k (3, 3) at its size; right (H, W) grey
        rectified partner and baseline (m) in stereo."""
        notes: list[tuple[str, str]] = []
        if self.model.recurrent and self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
            self.model.reset_state()      # bag loop / time jump: a recurrent model starts a new sequence
        self._last_stamp_ns = int(stamp_ns)
        net_in = self.shared.net_input(stamp_ns, self.model, image, encoding)
        k_net = self.model.intrinsics_for_net(k, (image.shape[1], image.shape[0]))
        depth = self.net(net_in, fx=float(k_net[0, 0]))
        ref = ratio = left = None
        if right is not None and baseline:
            left = to_gray(image, encoding)      # once: the SGBM match and the fusion's edge guide
            ref = self.stereo_map(left, right, k, baseline, stamp_ns, depth.shape)
            ratio = median_ratio(ref, depth)
        self.scene.observe(depth, ratio)
        self._resolve_scale(k, image.shape[1], notes)
        scale = self._scale(depth, k_net, ratio)
        if scale != 1.0:
            depth *= np.float32(scale)
        confidence = None
        if ref is not None and self.settings.fuse_stereo:
            fused = self._fuse(depth, ref, left, float(k_net[0, 0]), float(baseline))
            depth, confidence = fused.depth, fused.confidence
        return DepthStep(depth, k_net, net_in, scale, notes, confidence)

    def _scale(self, depth: np.ndarray, k_net: np.ndarray, ratio: float | None) -> float:
        """The factor for this frame's depth (h, w): stereo ratio, camera height, or the fixed one."""
        scaler = self.scaler
        if ratio is not None and scaler.needs_stereo and not scaler.frozen:
            scaler.observe(ratio)
        elif scaler.mode == "camera_height":
            scaler.observe_depth(depth, k_net)
        return float(scaler.scale)

    @staticmethod
    def _fuse(depth: np.ndarray, ref: np.ndarray, left: np.ndarray, fx_net: float, baseline: float):
        """SGBM fused with the scaled net (core.depth_fusion) at the net's size; the grey left image
        (H, W) as edge guide."""
        import cv2

        from vode_ros.core.depth_fusion import fuse_depth

        h, w = depth.shape
        guide = cv2.resize(left, (w, h), interpolation=cv2.INTER_AREA)
        return fuse_depth(depth, ref, guide, fx_net, baseline)

    def stereo_map(self, left: np.ndarray, right: np.ndarray, k: np.ndarray, baseline: float, stamp_ns: int,
                   shape: tuple[int, int]) -> np.ndarray:
        """The pair's SGBM depth (the shared map) from grey left / right (H, W), sampled at the net's pixels
        (nearest): (h, w) m, 0 = none."""
        import cv2

        ref = self.shared.depth(stamp_ns, left, right, float(k[0, 0]), float(baseline))
        h, w = shape
        if ref.shape != (h, w):
            ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_NEAREST)
        return ref

    def _resolve_scale(self, k: np.ndarray, width: int, notes: list) -> None:
        """scale_mode auto: decide, per model and camera, whether the model's metres hold (metric_trust)."""
        s = self.settings
        hfov = horizontal_fov_deg(k, width)
        scene = self.scene.evidence()
        verdict = scene_problem(self.model.meta.raw, scene) is not None    # decide again when it turns
        key = (id(self.model), round(hfov, 1), s.domain, s.scale_mode, verdict)
        if key == self._decision_key:
            return
        self._decision_key = key
        decision = choose_scale_source(s.scale_mode, self.model.meta.raw, hfov, s.domain, have_stereo=s.have_stereo,
                                       scene=scene)
        self.decision = decision
        if s.scale_mode == "auto" and decision.source != self.scaler.mode:
            self.scaler = ScaleEstimator(decision.source, camera_height=self.scaler.camera_height,
                                         smoothing=self.scaler.smoothing)
        level = "info" if decision.trusted or s.scale_mode != "auto" else "warning"
        notes.append((level, f"scale: {decision.source} ({decision.reason})"))
