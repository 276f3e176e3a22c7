"""Camera motion between consecutive frames from the pose net, from geometry, or both."""
