"""Plots: PNGs written atomically with the requested size; depth colour map LUT."""
import cv2
import numpy as np
import pytest

from vode_ros.core.colormap import colormap_lut, depth_colormap
from vode_ros.tools.plots import plot_trajectory_topview, save_depth_panel


def _poses(n=30):
    poses = np.tile(np.eye(4), (n, 1, 1))
    s = np.linspace(0, 20, n)
    poses[:, 0, 3] = 2 * np.sin(s / 5)
    poses[:, 2, 3] = s
    return poses


@pytest.mark.parametrize("plane", ["xz", "xy"])
def test_trajectory_png(tmp_path, plane):
    gt = _poses()
    est = gt.copy()
    est[:, :3, 3] *= 1.1
    out = plot_trajectory_topview(est, gt, tmp_path / "sub" / "traj.png", title="test",
                                  labels=("est", "gt"), plane=plane, ate=0.123,
                                  size_px=(640, 480))
    assert out.is_file() and out.stat().st_size > 1000
    img = cv2.imread(str(out))
    assert img.shape == (480, 640, 3)
    assert [p.name for p in out.parent.iterdir()] == ["traj.png"]  # no temp file left


def test_trajectory_positions_only_and_bad_plane(tmp_path):
    out = plot_trajectory_topview(_poses()[:, :3, 3], None, tmp_path / "t.png")
    assert cv2.imread(str(out)).shape == (800, 800, 3)
    with pytest.raises(ValueError):
        plot_trajectory_topview(_poses(), None, tmp_path / "u.png", plane="ab")


def test_colormap_lut_and_invalid_black():
    lut = colormap_lut("magma")
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert colormap_lut("magma") is lut  # built once
    depth = np.linspace(1.0, 50.0, 40 * 60, dtype=np.float32).reshape(40, 60)
    depth[0, :5] = 0.0
    depth[1, 0] = np.nan
    depth[1, 1] = np.inf
    depth[2, 0] = 1.0   # = vmin: bright end
    depth[2, 1] = 0.2   # nearer than vmin: clipped to the bright end
    depth[2, 2] = 500.0  # farther than vmax: clipped to the dark end
    bgr = depth_colormap(depth, vmin=1.0, vmax=50.0)
    assert bgr.shape == (40, 60, 3) and bgr.dtype == np.uint8
    assert (bgr[0, :5] == 0).all() and (bgr[1, :2] == 0).all()
    # near = bright end of magma, far = dark end
    np.testing.assert_array_equal(bgr[-1, -1], lut[0])
    np.testing.assert_array_equal(bgr[2, 0], lut[255])
    np.testing.assert_array_equal(bgr[2, 1], lut[255])
    np.testing.assert_array_equal(bgr[2, 2], lut[0])
    assert bgr[2, 0].astype(int).sum() > bgr[-1, -1].astype(int).sum()
    # BGR order: magma's bright end is yellowish (R > B)
    assert lut[255, 2] > lut[255, 0]
    # automatic range, all-invalid input
    assert depth_colormap(depth).shape == (40, 60, 3)
    assert (depth_colormap(np.zeros((4, 4))) == 0).all()


def test_depth_panel(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (60, 200), dtype=np.uint8)
    ref = np.tile(np.linspace(5, 40, 200, dtype=np.float32), (60, 1))
    ref[:10] = 0
    pred = ref[::2, ::2] * 1.1  # a smaller prediction is fine
    out = save_depth_panel(image, pred, ref, tmp_path / "panel.png", width_px=500)
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] == 500 and img.shape[0] > 150
    out2 = save_depth_panel(np.dstack([image] * 3), pred, None, tmp_path / "panel2.png")
    assert out2.stat().st_size > 1000


def test_evaluation_modules_do_not_import_torch():
    """The ROS run time imports these modules: they must stay numpy/OpenCV/matplotlib only."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import vode_ros.core.depth_metrics, vode_ros.core.trajectory\n"
            "import vode_ros.core.stereo_depth, vode_ros.tools.plots\n"
            "from vode_ros.core.colormap import depth_colormap\n"
            "import numpy as np; depth_colormap(np.ones((4, 4)))\n"
            "bad = [m for m in ('torch', 'matplotlib.pyplot') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
