"""``oexec sim``: a faithful Binance USDⓈ-M futures venue on loopback (docs/sim.md).

``engine/`` is the pure matching engine; the modules here are its HTTP face: auth, rate
limits, faults, control API, user stream, CLI. Embed with ``oexec.sim.app.SimServer``.
"""
