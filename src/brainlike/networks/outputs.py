"""File names the ``networks`` stage writes in its output folder.

Constants only (no imports), so readers of these outputs (the registry) name the files the
stage writes without depending on :mod:`brainlike.networks.stage`.
"""

LINKS_FILE = "links.parquet"  # in <output>/<model>/: one row per (stimulus, atom, sign, atlas, network)
LINKS_MARGINAL_FILE = "links_marginal.parquet"  # the same for the marginal (one atom at a time) group maps
MAPS_FILE = "maps.npz"  # in <output>/<model>/<stimulus>/: the thresholded (atom, sign) group maps
SUMMARY_FILE = "networks.json"  # in <output>/<model>/: the model's summary (also <metrics>/networks/<model>.json)
METRICS_DIR = "networks"  # <metrics>/networks/<model>.json
BOUNDS_DIR = "bounds"  # <output>/bounds/: links of the oracle and null of the embedded benchmark
