"""Pattern bases: sparse dictionary learning over all artificial neurons (the README, "Pattern bases").

``SparseDictionary`` (scikit-learn style) wraps pure torch functions in ``_solvers`` (online
dictionary learning, Mairal et al. 2010; CPU or CUDA, same code); ``stage`` writes the outputs
of the DVC stage ``patterns``.
"""

from .._utils.lazy import lazy_exports

# imported on first use: readers of the output names (encode, metrics) do not load torch
__getattr__ = lazy_exports(__name__, {
    "ColumnError": "_solvers", "encode": "_solvers", "fit_dictionary": "_solvers", "resolve_device": "_solvers",
    "DEFAULT_LAMBDA": "estimator", "SparseDictionary": "estimator",
    "fit_stimulus": "stage", "run_patterns": "stage",
})

__all__ = ["DEFAULT_LAMBDA", "ColumnError", "SparseDictionary", "encode", "fit_dictionary", "fit_stimulus",
           "resolve_device", "run_patterns"]
