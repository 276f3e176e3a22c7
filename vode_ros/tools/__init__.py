"""Tools on top of the run time and the training: demo, benchmarks, soak, online adaptation."""
