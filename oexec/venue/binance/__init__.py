"""Binance USDⓈ-M futures adapter: ``BinanceUsdmVenue`` (Venue) and ``BinanceUserStream``."""

from oexec.models.venue import StreamGap
from oexec.venue.binance.adapter import BinanceUsdmVenue
from oexec.venue.binance.errors import ListenKeyExpiredError
from oexec.venue.binance.parsing import VenueParseError
from oexec.venue.binance.transport import NullGate
from oexec.venue.binance.userstream import BinanceUserStream, StreamItem

__all__ = [
    "BinanceUsdmVenue",
    "BinanceUserStream",
    "ListenKeyExpiredError",
    "NullGate",
    "StreamGap",
    "StreamItem",
    "VenueParseError",
]
