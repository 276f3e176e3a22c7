"""Depth images into the odometry node's geometry: 32FC1 metres, or 16UC1 / mono16 millimetres (REP-118)."""
from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image

from vode_ros.core.image_codec import ImageDecodeError
from vode_ros.nodes.ros_msgs import depth_from_msg

pytestmark = [pytest.mark.ros]


def _msg(arr: np.ndarray, encoding: str, big: bool = False) -> Image:
    data = arr.astype(arr.dtype.newbyteorder(">" if big else "<")).tobytes()
    return Image(height=arr.shape[0], width=arr.shape[1], encoding=encoding, is_bigendian=int(big),
                 step=arr.shape[1] * arr.itemsize, data=data)


@pytest.mark.parametrize("big", [False, True], ids=["little_endian", "big_endian"])
@pytest.mark.parametrize("encoding", ["16UC1", "mono16"])
def test_millimetre_depth_becomes_metres(encoding, big):
    mm = np.array([[0, 500, 1234], [65535, 2000, 1]], np.uint16)      # 0 = no reading
    depth = depth_from_msg(_msg(mm, encoding, big))
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, mm.astype(np.float32) / 1000.0, rtol=1e-6)
    assert depth[0, 0] == 0.0


def test_metres_pass_through_and_other_encodings_are_named():
    m = np.array([[1.5, np.nan], [0.0, 80.0]], np.float32)
    np.testing.assert_array_equal(depth_from_msg(_msg(m, "32FC1")), m)
    with pytest.raises(ImageDecodeError, match="expected 32FC1 .metres. or 16UC1 .millimetres."):
        depth_from_msg(_msg(np.zeros((2, 2), np.uint8), "mono8"))
