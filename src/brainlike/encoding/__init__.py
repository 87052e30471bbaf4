"""Encoding layer: atoms as fixed regressors of every vertex / ROI (README: encoding).

Pure numerical cores on arrays (torch inside, CPU or CUDA; numpy in and out):

- :mod:`.design` -- design matrix (atoms + confounds + cosine drift + constant), high-pass;
- :mod:`.glm` -- AR(1)-prewhitened GLM and t contrasts matching nilearn's ``run_glm``;
- :mod:`.ridge` -- contiguous-block CV ridge with per-target alpha, permutation test,
  LOO ridge (scikit-learn ``RidgeCV`` equivalent) and the ``RidgeEncoder`` estimator;
- :mod:`.sparse` -- Lasso (FISTA) of every target on the fixed atoms;
- :mod:`.stats` -- BH-FDR, group one-sample test, bootstrap CIs, sign-flip paired tests;
- :mod:`.shared` -- shared-response (leave-one-subject-out) fits, noise ceilings, banded ridge and
  unique variance over baselines;
- :mod:`.baseline` -- word-rate / envelope-proxy regressors, a dataset's own nuisance columns;
- :mod:`.fit` -- per-run, group and shared-response drivers for the ``encode`` stage.
"""

from .baseline import dataset_baseline, word_baseline
from .design import cosine_drift, drift_basis, highpass, make_design
from .fit import fit_group, fit_subject
from .glm import GLMResult, ar1_glm, glm_contrasts, run_glm_ar1, t_to_z, two_sided_p
from .ridge import (
    RidgeEncoder,
    block_folds,
    cross_validated_ridge,
    fold_arrays,
    inner_folds,
    permutation_test_r,
    ridge_loo,
)
from .sparse import sparse_fit
from .stats import fdr_bh, group_one_sample

__all__ = [
    "GLMResult",
    "RidgeEncoder",
    "ar1_glm",
    "block_folds",
    "cosine_drift",
    "cross_validated_ridge",
    "dataset_baseline",
    "drift_basis",
    "fdr_bh",
    "fit_group",
    "fit_subject",
    "fold_arrays",
    "glm_contrasts",
    "group_one_sample",
    "highpass",
    "inner_folds",
    "make_design",
    "permutation_test_r",
    "ridge_loo",
    "run_glm_ar1",
    "sparse_fit",
    "t_to_z",
    "two_sided_p",
    "word_baseline",
]
