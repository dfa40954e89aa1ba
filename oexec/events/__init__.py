"""Event outlet: ZeroMQ PUB with sequence numbers, optionally mirrored to a Redis Stream.

Which events a change announces is the core's rule (oexec/service/outbox.py); this
package only numbers and carries them.
"""

from oexec.events.mirror import StreamMirror
from oexec.events.publisher import ZmqEventSink

__all__ = ["StreamMirror", "ZmqEventSink"]
