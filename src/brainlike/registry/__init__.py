"""MLflow registry of every encoding fit: records -> runs, comparison, UI, browser check.

Public API: :class:`ModelRecord`, :class:`SubjectFitRecord`, :class:`Artifact`,
:func:`log_model_fit`, :func:`records_from_outputs`, :func:`compare_table`, :func:`compare_main`,
:func:`ui_main`, :func:`open_store`, :class:`RegistryError`.
"""

from .adapter import records_from_outputs
from .compare import compare_main, compare_table, write_compare
from .log import LoggedFit, log_model_fit
from .records import Artifact, ModelRecord, SubjectFitRecord, provenance_hash
from .store import RegistryError, Store, check_store, open_store, resolve_store
from .ui import ui_main

__all__ = [
    "Artifact", "LoggedFit", "ModelRecord", "RegistryError", "Store", "SubjectFitRecord", "check_store",
    "compare_main", "compare_table", "log_model_fit", "open_store", "provenance_hash", "records_from_outputs",
    "resolve_store", "ui_main", "write_compare",
]
