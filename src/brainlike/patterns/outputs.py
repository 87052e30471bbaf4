"""File names the ``patterns`` stage writes.

Constants only (no imports), so readers of these outputs (the registry) name the files the
stage writes without depending on :mod:`brainlike.patterns.stage`.
"""

LAYER_HIST_PNG = "layer_hist.png"  # in <output>/<model>/<stimulus>/: each atom's sub-group over layers
METRICS_DIR = "patterns"  # in the metrics folder: <METRICS_DIR>/<model>.json, dictionary R^2 per stimulus
