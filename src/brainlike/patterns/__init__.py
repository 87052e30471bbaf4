"""Pattern bases: sparse dictionary learning over all artificial neurons (the README, "Pattern bases").

``SparseDictionary`` (scikit-learn style) wraps pure torch functions in ``_solvers`` (online
dictionary learning, Mairal et al. 2010; CPU or CUDA, same code); ``stage`` writes the outputs
of the DVC stage ``patterns``.
"""

from ._solvers import ColumnError, encode, fit_dictionary, resolve_device
from .estimator import DEFAULT_LAMBDA, SparseDictionary
from .stage import fit_stimulus, run_patterns

__all__ = ["DEFAULT_LAMBDA", "ColumnError", "SparseDictionary", "encode", "fit_dictionary", "fit_stimulus",
           "resolve_device", "run_patterns"]
