"""Pre-flight checks that catch template mistakes before any weights load (``lmforge doctor``)."""

from lmforge.doctor.checks import run_template_checks
from lmforge.doctor.preflight import preflight
from lmforge.doctor.report import Finding, Report, enforce, render_table, write_report

__all__ = ["Finding", "Report", "enforce", "preflight", "render_table", "run_template_checks", "write_report"]
