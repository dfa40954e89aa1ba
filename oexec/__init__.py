"""oexec: an order-execution daemon for crypto futures desks."""

__version__ = "0.1.0"
