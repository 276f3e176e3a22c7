"""Every operation of the numpy geometry (vode_ros.core.geometry) and its torch twin
(vode_training.geometry) has one name in both, and both give the same numbers.

One parametrised test: each case names the operation, builds a batch of inputs, and says how
the single-sample numpy function is called on one of them.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vode_ros.core import geometry as npg
from vode_training import geometry as tg

RNG = np.random.default_rng(0)
B = 8


def _poses() -> np.ndarray:
    return np.concatenate([RNG.normal(0, 2, (B, 3)), RNG.uniform(-1.4, 1.4, (B, 3))], axis=1)


def _mats() -> np.ndarray:
    return np.stack([npg.pose_vec2mat(v) for v in _poses()])


def _k() -> np.ndarray:
    """(B, 3, 3) intrinsics with focal lengths and centres that differ per sample."""
    f = RNG.uniform(80, 400, (B, 2))
    c = RNG.uniform(30, 200, (B, 2))
    k = np.zeros((B, 3, 3))
    k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2], k[:, 2, 2] = f[:, 0], f[:, 1], c[:, 0], c[:, 1], 1.0
    return k


# name -> (batched inputs, numpy call on sample i, torch call on the batch)
CASES = {
    "euler2mat": (lambda: [RNG.uniform(-1.4, 1.4, (B, 3))], lambda a: npg.euler2mat(a), lambda a: tg.euler2mat(a)),
    "mat2euler": (lambda: [_mats()[:, :3, :3]], lambda r: npg.mat2euler(r), lambda r: tg.mat2euler(r)),
    "pose_vec2mat": (lambda: [_poses()], lambda v: npg.pose_vec2mat(v), lambda v: tg.pose_vec2mat(v)),
    "mat2pose_vec": (lambda: [_mats()], lambda m: npg.mat2pose_vec(m), lambda m: tg.mat2pose_vec(m)),
    "invert_se3": (lambda: [_mats()], lambda m: npg.invert_se3(m), lambda m: tg.invert_se3(m)),
    "skew": (lambda: [RNG.normal(0, 1, (B, 3))], lambda w: npg.skew(w), lambda w: tg.skew(w)),
    "se3_exp": (lambda: [np.concatenate([RNG.normal(0, 1, (B, 3)),
                                         RNG.normal(0, 1, (B, 3)) * np.logspace(-6, 0, B)[:, None]], 1)],
                lambda x: npg.se3_exp(x), lambda x: tg.se3_exp(x)),
    "rescale_intrinsics": (lambda: [_k()], lambda k: npg.rescale_intrinsics(k, 0.5, 0.25),
                           lambda k: tg.rescale_intrinsics(k, 0.5, 0.25)),
    "scale_intrinsics": (lambda: [_k()], lambda k: npg.scale_intrinsics(k, (128, 96), (416, 128)),
                         lambda k: tg.scale_intrinsics(k, (128, 96), (416, 128))),
    "disp_to_depth": (lambda: [RNG.uniform(0.0, 20.0, (B, 5))], lambda d: npg.disp_to_depth(d, 0.1, 80.0),
                      lambda d: tg.disp_to_depth(d, 0.1, 80.0)),
    "backproject": (lambda: [RNG.uniform(1, 50, (B, 6, 7)), _k()], lambda d, k: npg.backproject(d, k),
                    lambda d, k: tg.backproject(d[:, None], torch.linalg.inv(k))),
    "backproject_points": (lambda: [RNG.uniform(-20, 400, (B, 2, 9)), RNG.uniform(0.5, 50, (B, 1, 9)), _k()],
                           lambda p, z, k: npg.backproject_points(p, z, k),
                           lambda p, z, k: tg.backproject_points(p, z, torch.linalg.inv(k))),
    "transform_points": (lambda: [_mats(), RNG.normal(0, 5, (B, 3, 9))], lambda m, p: npg.transform_points(m, p),
                         lambda m, p: tg.transform_points(m, p)),
    # z from -1 to 50: points behind the camera are clamped alike in both
    "project": (lambda: [np.concatenate([RNG.normal(0, 5, (B, 2, 9)), RNG.uniform(-1, 50, (B, 1, 9))], 1), _k()],
                lambda p, k: np.concatenate(npg.project(p, k)), lambda p, k: torch.cat(tg.project(p, k), 1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_twins_agree(name):
    make, np_fn, torch_fn = CASES[name]
    inputs = make()
    got = torch_fn(*[torch.from_numpy(x) for x in inputs]).numpy()
    want = np.stack([np_fn(*[x[i] for x in inputs]) for i in range(B)])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_every_public_numpy_operation_has_a_twin():
    """A new function in one twin needs its partner (or a place in NUMPY_ONLY) and a case above."""
    numpy_only = {"stereo_disparity_to_depth"}           # stereo matching happens at run time only
    public = {n for n, f in vars(npg).items() if callable(f) and not n.startswith("_")
              and getattr(f, "__module__", "") == npg.__name__}
    for name in public - numpy_only:
        assert hasattr(tg, name), f"vode_training.geometry lacks {name}"
        assert name in CASES, f"no parity case for {name}"


@pytest.mark.parametrize("fn, bad", [(tg.pose_vec2mat, torch.zeros(2, 5)), (tg.invert_se3, torch.zeros(3, 3)),
                                     (tg.backproject, torch.zeros(1, 2, 4, 4)), (npg.mat2pose_vec, np.zeros((3, 4)))])
def test_shape_checks_name_the_argument(fn, bad):
    with pytest.raises(ValueError, match="expected shape"):
        fn(bad) if fn is not tg.backproject else fn(bad, torch.eye(3)[None])
