"""Gold: metrics, funnels and daily figures computed from silver."""

from eventpipe.gold.stage import GoldResult, build_gold

__all__ = ["GoldResult", "build_gold"]
