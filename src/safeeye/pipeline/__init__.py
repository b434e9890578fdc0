"""The scan pipeline: analyse media into signals, record them, match them to cases."""
