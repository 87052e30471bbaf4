"""Encoding layer: atoms as fixed regressors of every vertex / ROI (README: encoding).

Pure numerical cores on arrays (torch inside, CPU or CUDA; numpy in and out):

- :mod:`.design` -- design matrix (atoms + confounds + cosine drift + constant), high-pass;
- :mod:`.glm` -- AR(1)-prewhitened GLM and t contrasts matching nilearn's ``run_glm``;
- :mod:`.folds` -- contiguous-block CV folds (outer and inner) with gaps;
- :mod:`.splits` -- per-split nuisance handling (drift regression or centring) of design and data;
- :mod:`.solvers` -- SVD ridge cores: alpha selection, held-out predictions, R^2 and Pearson r;
- :mod:`.ridge` -- contiguous-block CV ridge with per-target alpha, permutation test,
  LOO ridge (scikit-learn ``RidgeCV`` equivalent) and the ``RidgeEncoder`` estimator;
- :mod:`.sparse` -- Lasso (FISTA) of every target on the fixed atoms;
- :mod:`.stats` -- BH-FDR, group one-sample test, bootstrap CIs, sign-flip paired tests;
- :mod:`.banded` -- banded ridge (one penalty per feature band) and its shifted-band null;
- :mod:`.shared` -- shared-response (leave-one-subject-out) fits, noise ceilings and unique
  variance over baselines;
- :mod:`.baseline` -- word-rate / envelope-proxy regressors, a dataset's own nuisance columns;
- :mod:`.fit` -- per-run, group and shared-response drivers for the ``encode`` stage.
"""

from .baseline import dataset_baseline, word_baseline
from .design import cosine_drift, drift_basis, highpass, make_design
from .fit import fit_group, fit_subject
from .folds import block_folds, inner_folds
from .glm import GLMResult, ar1_glm, glm_contrasts, run_glm_ar1, t_to_z, two_sided_p
from .ridge import RidgeEncoder, cross_validated_ridge, permutation_test_r, ridge_loo
from .sparse import sparse_fit
from .splits import fold_arrays
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
