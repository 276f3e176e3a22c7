"""Rectification of raw camera images by their calibration (core.rectify), as image_proc does."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vode_ros.core.rectify import (Calibration, intrinsics_problem, rectification_needed, rectification_problem,
                                   rectifier_for)

from camera_helpers import calibration, raw_from_rectified

SIZE = (320, 240)
K = np.array([[260.0, 0.0, 161.5], [0.0, 258.0, 118.0], [0.0, 0.0, 1.0]])


def _scene(size=SIZE, seed=0) -> np.ndarray:
    """A textured pinhole image: smooth noise with a grid of lines on top, both a few pixels wide, so that
    bilinear sampling (once to make the raw image, once to rectify it) keeps the texture."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((size[1], size[0])), (0, 0), 3.0)
    img = (img - img.min()) / (img.max() - img.min()) * 200
    img[::20, :] = img[1::20, :] = 255
    img[:, ::20] = img[:, 1::20] = 255
    return cv2.GaussianBlur(img, (0, 0), 1.0).astype(np.uint8)


def _interior_error(a: np.ndarray, b: np.ndarray, margin: int = 12) -> float:
    m = (slice(margin, -margin), slice(margin, -margin))
    return float(np.abs(a[m].astype(np.float64) - b[m].astype(np.float64)).mean())


@pytest.mark.parametrize("model,d", [("plumb_bob", (-0.30, 0.09, 0.001, -0.0015, 0.0)),
                                     ("rational_polynomial", (-0.25, 0.05, 0.0, 0.001, 0.0, 0.02, 0.0, 0.0)),
                                     ("equidistant", (-0.02, 0.01, -0.005, 0.001))])
def test_rectifying_a_distorted_image_gives_back_the_pinhole_image(model, d):
    """raw image made by distorting a pinhole image (barrel, rational, fisheye) | rectified it matches the pinhole
    image within a few grey levels (two bilinear resamplings), where the raw image itself is off by ~45"""
    rect = _scene()
    cal = calibration(K, SIZE, d, model)
    raw, inside = raw_from_rectified(rect, cal)
    assert inside.mean() > 0.6          # barrel: the raw corners see beyond the pinhole image
    out = rectifier_for(cal)(raw)
    assert out.shape == rect.shape and out.dtype == rect.dtype
    # Compare only where the rectified pixel came from inside the raw image.
    valid = rectifier_for(cal)(np.full_like(raw, 255)) == 255
    m = valid & (np.arange(SIZE[0])[None] > 12) & (np.arange(SIZE[0])[None] < SIZE[0] - 12)
    err = np.abs(out[m].astype(float) - rect[m].astype(float)).mean()
    before = np.abs(raw[m].astype(float) - rect[m].astype(float)).mean()
    assert err < 5.0 and before > 8 * err       # what is left is the two bilinear resamplings


def test_stereo_rotation_and_new_camera_move_a_point_where_the_projection_says():
    """D = 0 but R (a stereo rectification's rotation) and P differ from K | a bright spot at K X in the raw
    image lands at P R X in the rectified one, to a tenth of a pixel"""
    r = cv2.Rodrigues(np.array([0.01, -0.03, 0.02]))[0]
    k_new = np.array([[240.0, 0.0, 158.0], [0.0, 240.0, 121.0], [0.0, 0.0, 1.0]])
    p = np.hstack([k_new, [[-30.0], [0.0], [0.0]]])           # a right camera's P: Tx = -fx' * baseline
    cal = calibration(K, SIZE, (0.0,) * 5, r=r, p=p)
    point = np.array([0.3, -0.2, 2.0])
    raw_uv = (K @ point)[:2] / point[2]
    rect_xyz = k_new @ (r @ point)
    rect_uv = rect_xyz[:2] / rect_xyz[2]
    v, u = np.mgrid[0:SIZE[1], 0:SIZE[0]].astype(np.float64)
    raw = (255 * np.exp(-((u - raw_uv[0]) ** 2 + (v - raw_uv[1]) ** 2) / (2 * 2.0 ** 2))).astype(np.float32)
    out = rectifier_for(cal)(raw)
    centroid = np.array([(out * u).sum(), (out * v).sum()]) / out.sum()
    assert np.linalg.norm(centroid - rect_uv) < 0.1
    assert not cal.raw_is_rectified and np.allclose(cal.k_rect, k_new)


def test_a_rectified_camera_needs_no_remap_and_keeps_its_k():
    """D = 0, R unset, P = [K|0] (what the KITTI bags and most drivers of rectified cameras publish) | nothing to
    remap, in every rectify mode; the intrinsics are K"""
    p = np.hstack([K, np.zeros((3, 1))])
    cal = calibration(K, SIZE, (0.0,) * 5, p=p)
    assert cal.raw_is_rectified and np.allclose(cal.k_rect, K)
    for mode in ("auto", "on", "off"):
        assert not rectification_needed(cal, mode, "/camera/image_raw")
    only_k = calibration(K, SIZE)           # no D, R, P at all (a minimal driver)
    assert only_k.raw_is_rectified and np.allclose(only_k.k_rect, K)


def test_auto_trusts_an_image_rect_topic_and_remaps_an_image_raw_one():
    """rectify auto with a distorted calibration | image_raw is remapped, image_rect (image_proc's output, sent
    beside the raw CameraInfo) is not; on / off force it"""
    cal = calibration(K, SIZE, (-0.3, 0.1, 0.0, 0.0, 0.0))
    assert rectification_needed(cal, "auto", "/cam/left/image_raw")
    assert rectification_needed(cal, "auto", "image")
    assert not rectification_needed(cal, "auto", "/cam/left/image_rect")
    assert not rectification_needed(cal, "auto", "/cam/left/image_rect_color/")
    assert rectification_needed(cal, "on", "/cam/left/image_rect")
    assert not rectification_needed(cal, "off", "/cam/left/image_raw")


@pytest.mark.parametrize("cal,words", [
    (calibration(K, SIZE, (0.1, 0.0, 0.0, 0.0), "kannala_brandt_9"), "not supported"),
    (calibration(K, SIZE, (0.1, 0.0, 0.0), "plumb_bob"), "takes 5 coefficients, D has 3"),
    (calibration(K, SIZE, (0.1, math.nan, 0.0, 0.0, 0.0)), "D has non-finite"),
    (Calibration(SIZE[0], SIZE[1], tuple(K.ravel()), (0.0,) * 5, r=(1.0, 0.0)), "R must be 9 finite values"),
])
def test_distortion_that_cannot_be_undone_is_named(cal, words):
    """unknown distortion model, wrong number of coefficients, NaN in D, a short R | one sentence naming the
    field (and the way out); the intrinsics are still usable"""
    problem = rectification_problem(cal)
    assert problem is not None and words in problem
    assert intrinsics_problem(cal) is None


@pytest.mark.parametrize("p,words", [(-np.eye(3, 4), "P's focal lengths"), (np.full((3, 4), math.inf), "P has non")])
def test_a_projection_that_cannot_be_the_camera_is_named(p, words):
    """P with a negative focal length or Inf | named: the rectified camera's intrinsics come from P"""
    problem = intrinsics_problem(calibration(K, SIZE, (0.0,) * 5, p=p))
    assert problem is not None and words in problem


def test_an_unknown_model_without_distortion_is_fine_and_maps_are_built_once():
    """distortion_model '' with D all zero (nothing to undo) | no problem; equal calibrations share one Rectifier"""
    assert rectification_problem(calibration(K, SIZE, (), "")) is None
    a = calibration(K, SIZE, (-0.3, 0.1, 0.0, 0.0, 0.0))
    b = calibration(K.copy(), SIZE, (-0.3, 0.1, 0.0, 0.0, 0.0))
    assert rectifier_for(a) is rectifier_for(b)


def test_depth_is_remapped_without_blending():
    """a depth image (two planes, 0 = no reading) rectified with nearest=True | every output depth is one of the
    input depths: no invented depth between the planes, none between a reading and a hole"""
    depth = np.zeros((SIZE[1], SIZE[0]), np.float32)
    depth[:, : SIZE[0] // 2], depth[:, SIZE[0] // 2:] = 1.5, 4.0
    depth[100:140, 100:140] = 0.0
    out = rectifier_for(calibration(K, SIZE, (-0.3, 0.1, 0.0, 0.0, 0.0)))(depth, nearest=True)
    assert set(np.unique(out)) <= {0.0, 1.5, 4.0} and (out == 4.0).sum() > 0


def _info(k, size, d=(), p=None, binning=(0, 0), roi=(0, 0, 0, 0)):
    """A CameraInfo-shaped object (the fields calibration_from_info reads)."""
    from types import SimpleNamespace

    p = np.hstack([k, np.zeros((3, 1))]) if p is None else p
    return SimpleNamespace(width=size[0], height=size[1], k=np.asarray(k, float).ravel(), d=list(d),
                           r=np.eye(3).ravel(), p=np.asarray(p, float).ravel(), distortion_model="plumb_bob",
                           binning_x=binning[0], binning_y=binning[1],
                           roi=SimpleNamespace(x_offset=roi[0], y_offset=roi[1], width=roi[2], height=roi[3]))


def test_binning_and_roi_give_the_published_image_its_own_camera():
    """CameraInfo of a 1280x960 sensor with binning 2 and a 640x480 ROI at (100, 60) | the calibration describes
    the published 320x240 image: K and P shifted by the ROI and halved (image_geometry's convention), and
    rectifying that image matches the ROI of the rectified full image, binned"""
    from vode_ros.core.rectify import calibration_from_info

    k_full = np.array([[900.0, 0.0, 641.0], [0.0, 905.0, 478.0], [0.0, 0.0, 1.0]])
    d = (-0.28, 0.08, 0.0, 0.0, 0.0)
    cal = calibration_from_info(_info(k_full, (1280, 960), d, binning=(2, 2), roi=(100, 60, 640, 480)))
    assert (cal.width, cal.height) == (320, 240)
    np.testing.assert_allclose(cal.k_raw, [[450.0, 0, 270.5], [0, 452.5, 209.0], [0, 0, 1]])
    np.testing.assert_allclose(cal.k_rect, cal.k_raw)
    full = calibration_from_info(_info(k_full, (1280, 960), d))
    assert (full.width, full.height) == (1280, 960) and np.allclose(full.k_raw, k_full)
    rect_full = _scene((1280, 960), seed=2)
    raw_full, _ = raw_from_rectified(rect_full, full)
    crop = (slice(60, 540), slice(100, 740))
    raw_pub = cv2.resize(raw_full[crop], (320, 240), interpolation=cv2.INTER_AREA)
    expected = cv2.resize(rect_full[crop], (320, 240), interpolation=cv2.INTER_AREA)
    err = _interior_error(rectifier_for(cal)(raw_pub), expected)
    unadjusted = calibration(k_full, (320, 240), d)            # the sensor's K taken for the binned image
    wrong = _interior_error(rectifier_for(unadjusted)(raw_pub), expected)
    assert err < 10.0 and wrong > 5 * err, (err, wrong)     # measured: 7.2 vs 52.8 grey levels
