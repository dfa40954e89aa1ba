"""Pre-trade rules: the venue's filters (validation) and the desk's limits (risk).

Pure and in memory, except the optional external risk service. See docs/pretrade.md.
"""

from oexec.service.rules.context import MarketContext

__all__ = ["MarketContext"]
