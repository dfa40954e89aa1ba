"""The simulator's matching engine: a pure, synchronous, seeded model of Binance USDⓈ-M.

No HTTP, no asyncio, no wall clock. The HTTP layer (``oexec.sim``) authenticates, rate
limits and injects faults, then calls ``Exchange`` with the merged request parameters
(``dict[str, str]``) and serialises what it returns; ``SimError`` becomes
``{"code", "msg"}`` with ``http_status``. Events reach ``subscribe`` callbacks
synchronously, in the order the venue would send them.
"""

from oexec.sim.engine.errors import SimError
from oexec.sim.engine.exchange import Exchange
from oexec.sim.engine.specs import DEFAULT_SYMBOLS, SymbolSpec

__all__ = ["DEFAULT_SYMBOLS", "Exchange", "SimError", "SymbolSpec"]
