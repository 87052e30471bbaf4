"""File names the ``patterns`` stage writes.

Constants only (no imports), so readers of these outputs (the registry) name the files the
stage writes without depending on :mod:`brainlike.patterns.stage`.
"""

LAYER_HIST_PNG = "layer_hist.png"  # in <output>/<model>/<stimulus>/: each atom's sub-group over layers
METRICS_DIR = "patterns"  # in the metrics folder: <METRICS_DIR>/<model>.json, dictionary R^2 per stimulus
ATOMS_FILE = "atoms.parquet"  # in <output>/<model>/<stimulus>/: one row per atom (time course columns)
CODES_FILE = "codes.npz"  # sparse codes (ANs x K), scipy.sparse
ANS_FILE = "ans.parquet"  # one row per artificial neuron: layer, index
SUBGROUPS_FILE = "subgroups.parquet"  # each atom's sub-group of ANs
LAYER_HIST_FILE = "layer_hist.parquet"  # each atom's sub-group over layers (the table behind the PNG)
SIDECAR_FILE = "patterns.json"  # the fit's parameters and provenance
