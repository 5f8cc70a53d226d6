from eventpipe.quality.checks import BUILT_IN_CHECKS, Check, all_checks
from eventpipe.quality.report import check_warehouse, report_path, write_report
from eventpipe.quality.runner import CheckResult, QualityResult, run_checks

__all__ = [
    "BUILT_IN_CHECKS",
    "Check",
    "CheckResult",
    "QualityResult",
    "all_checks",
    "check_warehouse",
    "report_path",
    "run_checks",
    "write_report",
]
