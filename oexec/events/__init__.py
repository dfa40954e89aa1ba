"""Event outlet: ZeroMQ PUB with sequence numbers, optionally mirrored to a Redis Stream."""

from oexec.events.mirror import StreamMirror
from oexec.events.publisher import ZmqEventSink
from oexec.events.topics import fill_event, order_event, order_topic

__all__ = ["StreamMirror", "ZmqEventSink", "fill_event", "order_event", "order_topic"]
