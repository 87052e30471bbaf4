"""Self-contained HTML report (``reports/index.html``) and the offline DVC plots template."""

from .html import ModelReport, build_report, linked_atoms
from .plots import PLOTS_TEMPLATE, check_plots_template

__all__ = ["ModelReport", "PLOTS_TEMPLATE", "build_report", "check_plots_template", "linked_atoms"]
