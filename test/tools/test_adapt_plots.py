"""Figures of the adaptation and the demo: every depth panel on its own colour range, so a depth 5x
off still shows its structure (on a shared range it is one flat colour), and the adaptation figure."""
from __future__ import annotations

import cv2
import numpy as np

from vode_ros.tools.plots import own_range, plot_adaptation, save_depth_panel


def _scene():
    h, w = 60, 200
    ref = np.tile(np.linspace(2.0, 20.0, w, dtype=np.float32), (h, 1))
    image = (np.tile(np.linspace(0, 255, w), (h, 1))).astype(np.uint8)
    return image, ref


def _middle_row_spread(path) -> float:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    third = img.shape[0] // 3
    row = img[third + third // 4: 2 * third - third // 4, : int(img.shape[1] * 0.85)]   # prediction panel, no colour bar
    return float(row.std())


def test_each_panel_on_its_own_range_shows_a_far_off_depth(tmp_path):
    image, ref = _scene()
    far = ref * 5.0                                       # a model 5x off
    shared = save_depth_panel(image, far, ref, tmp_path / "shared.png", width_px=600)
    own = save_depth_panel(image, far, ref, tmp_path / "own.png", width_px=600, own_ranges=True)
    assert _middle_row_spread(own) > 3 * _middle_row_spread(shared)
    lo, hi = own_range(far)
    assert np.allclose((lo, hi), np.percentile(far, [5, 95]))
    assert own_range(np.zeros((4, 4))) == (1.0, 80.0)


def test_adaptation_figure(tmp_path):
    image, ref = _scene()
    poses = np.tile(np.eye(4), (6, 1, 1))
    poses[:, 2, 3] = np.arange(6)
    out = plot_adaptation([image, image], [ref * 3, ref * 3], [ref * 1.1, ref], [ref, None], tmp_path / "a.png",
                          "installed: photometric 0.2 -> 0.1", {"reference": poses, "before": poses * 0.5, "after": poses})
    assert cv2.imread(str(out)) is not None and out.stat().st_size > 10_000
