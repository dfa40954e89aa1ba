"""``oexec bench``: oexec end to end against ccxt, python-binance and the raw floors.

Everything runs in separate processes against one fault-free simulator with its rate
limits lifted: the simulator (``oexec sim``), the daemon (``oexec run``) and one load
generator process per row (``python -m oexec.bench.worker``). Latencies are recorded in
HdrHistograms by the load generators and merged here; see docs/bench.md for how to read
the table.
"""
