"""The HTML run report: what a run did and what the data says, in one self-contained file."""

from eventpipe.report.page import ReportResult, write_html_report

__all__ = ["ReportResult", "write_html_report"]
