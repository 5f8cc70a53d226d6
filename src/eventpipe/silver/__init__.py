"""Silver: standardized, validated, deduplicated events and the sessions they form."""

from eventpipe.silver.stage import SilverResult, build_silver, rebuild_silver_dates

__all__ = ["SilverResult", "build_silver", "rebuild_silver_dates"]
