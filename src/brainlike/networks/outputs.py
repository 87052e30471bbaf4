"""File names the ``networks`` stage writes in its output folder.

Constants only (no imports), so readers of these outputs (the registry) name the files the
stage writes without depending on :mod:`brainlike.networks.stage`.
"""

LINKS_FILE = "links.parquet"  # one row per (model, stimulus, atom, sign, atlas, network)
MAPS_FILE = "maps.npz"  # in <output>/<model>/<stimulus>/: the thresholded (atom, sign) group maps
SUMMARY_FILE = "networks.json"  # in the output folder and the metrics folder: the stage summary
BOUNDS_DIR = "bounds"  # <output>/bounds/links.parquet: the oracle and null of the embedded benchmark
