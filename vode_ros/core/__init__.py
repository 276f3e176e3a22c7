"""The torch-free, ROS-free core that the run time and the training both build on:
camera and pose geometry, frame conventions, dataset I/O, image codec, stereo depth, metrics."""
