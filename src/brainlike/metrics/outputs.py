"""File names the ``metrics`` stage writes in the metrics folder (``paths.metrics``).

Constants only (no imports), so readers of these outputs (the registry) name the files the
stage writes without depending on :mod:`brainlike.metrics.stage`.
"""

ORGANIZATION_FILE = "organization.json"  # {"models": {M: organization metrics}}
RECOVERY_FILE = "recovery.json"  # scores against the planted ground truth
ALICE_FILE = "alice.json"  # ROI-space (real data) report and verdicts
ORGANIZATION_TABLE = "organization.parquet"  # the organization metrics, one row per (model, metric)
