"""Torch twin of ``vode_ros.core.geometry``: poses, the pinhole camera and differentiable warping.

One home for the training code's geometry; the numpy twin carries the same names, and
test/core/test_geometry_twins.py holds every pair equal.

- :mod:`.pose`: euler2mat, mat2euler, pose_vec2mat, mat2pose_vec, invert_se3, stereo_transform,
  skew, so3_exp, se3_exp, se3_to_pose_vec.
- :mod:`.camera`: pixel_grid, backproject, backproject_points, project, transform_points, rescale_intrinsics,
  scale_intrinsics, disp_to_depth.
- :mod:`.warp`: pixel_to_grid, in_image, sample_pixels, rigid_pixels, inverse_warp.

Conventions: optical camera frames (x right, y down, z forward); pose vector
``[tx, ty, tz, rx, ry, rz]`` with R = Rz(rz) @ Ry(ry) @ Rx(rx); ``T_src_tgt`` maps points of
the target camera into the source camera (X_s = T_s_t @ X_t); pixel centres at integer coordinates.
"""
from .camera import (backproject, backproject_points, disp_to_depth, pixel_grid, project, rescale_intrinsics,
                     scale_intrinsics, transform_points)
from .pose import (euler2mat, invert_se3, mat2euler, mat2pose_vec, pose_vec2mat, se3_exp, se3_to_pose_vec, skew,
                   so3_exp, stereo_transform)
from .warp import in_image, inverse_warp, pixel_to_grid, rigid_pixels, sample_pixels

__all__ = [
    "backproject", "backproject_points", "disp_to_depth", "pixel_grid", "project", "rescale_intrinsics", "scale_intrinsics",
    "transform_points", "euler2mat", "invert_se3", "mat2euler", "mat2pose_vec", "pose_vec2mat", "se3_exp",
    "se3_to_pose_vec", "skew", "so3_exp", "stereo_transform", "in_image", "inverse_warp", "pixel_to_grid",
    "rigid_pixels", "sample_pixels",
]
