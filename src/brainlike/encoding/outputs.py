"""File names the ``encode`` / ``encode_baseline`` stages write in ``<output>/<model>/<stimulus>/``.

Constants only (no imports), so readers of these outputs (the registry) name the files the
stage writes without depending on :mod:`brainlike.encoding.stage`.
"""

SUMMARY_FILE = "encode.json"  # the stimulus summary: space, group and per-subject r, params
GROUP_FILE = "group.npz"  # group maps: z, t, q, significant, ... (K, V); r_mean, r2_mean (V,)
TARGETS_FILE = "targets.parquet"  # one row per (subject or "group", target)
SUBJECT_PREFIX = "sub-"
SUBJECT_FILE = SUBJECT_PREFIX + "{subject}.npz"  # one subject's maps: r, valid, significant, z, run_ids
SUBJECT_GLOB = SUBJECT_PREFIX + "*.npz"
SHARED_FILE = "shared.json"  # shared-response fits: LOSO r, ceilings, unique variance
