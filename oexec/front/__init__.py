"""ZeroMQ ROUTER front end: the daemon's request intake (docs/wire.md)."""

from oexec.front.metrics import FrontMetrics
from oexec.front.router import FrontEnd

__all__ = ["FrontEnd", "FrontMetrics"]
