"""End-to-end checks of a whole workspace, run after ``dvc repro`` (not by the pipeline itself).

- :mod:`.remote`: the DVC remote round trip (push every cached output, pull into a fresh copy
  with an empty cache, no stage would re-run); ``make remote-check``;
- :mod:`.compute`: a Dask cluster gives the same organization metrics as the serial run;
  ``make compute-check``.

- :mod:`.zoo`: the model-zoo experiment (the default plus ``experiments/zoo.yaml`` in a scratch
  copy on the same DVC cache; the comparison goes to ``metrics/zoo/``); ``make zoo``.
- :mod:`.reproducible`: no machine path or wall time in the tracked outputs
  (``portable``), and the per-stage wall times of ``build/timings`` as a table (``times``).

One entry: ``python -m brainlike.checks {remote,compute,reproduce,portable,times,zoo} [ARGS]``. This package sits above
every other layer: it may import any of them, and none imports it.
"""
