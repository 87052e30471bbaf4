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

from .._utils.lazy import lazy_exports

# imported on first use: stages that only need the statistics or the output names (networks,
# metrics, registry) do not load torch and nilearn
_EXPORTS = {
    "GLMResult": "glm",
    "RidgeEncoder": "ridge",
    "ar1_glm": "glm",
    "block_folds": "folds",
    "cosine_drift": "design",
    "cross_validated_ridge": "ridge",
    "dataset_baseline": "baseline",
    "drift_basis": "design",
    "fdr_bh": "stats",
    "fit_group": "fit",
    "fit_subject": "fit",
    "fold_arrays": "splits",
    "glm_contrasts": "glm",
    "group_moderated": "stats",
    "group_one_sample": "stats",
    "highpass": "design",
    "inner_folds": "folds",
    "make_design": "design",
    "permutation_test_r": "ridge",
    "ridge_loo": "ridge",
    "run_glm_ar1": "glm",
    "sparse_fit": "sparse",
    "t_to_z": "stats",
    "two_sided_p": "stats",
    "word_baseline": "baseline",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

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
    "group_moderated",
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
