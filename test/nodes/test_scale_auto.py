"""scale_mode auto: the depth node publishes the model's metres only on a camera like its training ones.

A copy of the shipped models gets metadata for a driving model trained at ~82 deg field of view;
real rclpy over DDS, frames of the demo clip with the clip's camera, then with a wide-angle K.
"""
from __future__ import annotations


import numpy as np
import pytest
from rclpy.parameter import Parameter

from ros_helpers import Harness, ensure_rclpy
from trust_helpers import driving_models as trust_models
from vode_ros.core.kitti import load_sequence, read_image

pytestmark = [pytest.mark.ros]


@pytest.fixture(params=["driving", "driving,indoor"], ids=["driving", "mixed"])
def driving_models(models_dir, tmp_path, request):
    """The shipped models recorded as a driving model, or as a mixed one trained on both domains."""
    return trust_models(models_dir, tmp_path, domain=request.param, depth_range=False)


@pytest.mark.parametrize("fx_factor, domain, expect", [
    (1.0, "", "auto: model (metric)"),        # the demo clip's camera: like the training cameras
    (0.5, "", "auto: none (relative)"),       # a wide-angle camera it never saw
    (1.0, "indoor", "auto: none (relative)"), # same optics, another world (unless the model saw it too)
])
def test_auto_scale_follows_the_camera(driving_models, kitti_dir, fx_factor, domain, expect, request):
    from vode_ros.nodes.depth_node import DepthNode

    if domain == "indoor" and request.node.callspec.params["driving_models"] == "driving,indoor":
        expect = "auto: model (metric)"      # a model recorded for both domains is trusted indoors
    ensure_rclpy()
    seq = load_sequence(kitti_dir, max_frames=2)
    k = seq.k.copy()
    k[0, 0] *= fx_factor
    k[1, 1] *= fx_factor
    node = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(driving_models)),
                                          Parameter("domain", value=domain)])
    h = Harness([node])
    try:
        assert h.wait_connected()
        h.publish_frame(read_image(seq.left[0]), "mono8", k, 10.0)
        assert h.wait_for(lambda: any(s.node == "depth" and s.frames_out for s in h.got["status"]), 30.0)
        status = [s for s in h.got["status"] if s.node == "depth" and s.frames_out][-1]
        assert status.scale_source.startswith(expect), status.scale_source
        assert np.isfinite(status.scale) and status.scale > 0
    finally:
        h.close()
