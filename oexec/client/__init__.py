"""Client library for strategy processes: sync Client, AsyncClient, event Subscriber.

from oexec.client import Client
with Client("tcp://127.0.0.1:5555") as client:
    order = client.place_order(symbol="BTCUSDT", side="BUY", type="LIMIT",
                               quantity="0.010", price="50000", time_in_force="GTC")
"""

from oexec.client.aio import AsyncClient
from oexec.client.errors import (
    ClientError,
    ClientTimeoutError,
    DuplicateRequestError,
    InvalidRequestError,
    OrderNotFoundError,
    OrderRejectedError,
    OrderStateError,
    ProtocolError,
    ReplayError,
    ServerError,
    StoreFailureError,
    ThrottledError,
    UnauthorizedError,
    UnavailableError,
    UnknownOutcomeError,
    VenueFailureError,
    error_for,
)
from oexec.client.replay import DaemonReplay, StreamReplay, StreamSubscriber
from oexec.client.requests import new_request_id
from oexec.client.subscriber import Event, Gap, Subscriber
from oexec.client.sync import Client

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "ClientTimeoutError",
    "DaemonReplay",
    "DuplicateRequestError",
    "Event",
    "Gap",
    "InvalidRequestError",
    "OrderNotFoundError",
    "OrderRejectedError",
    "OrderStateError",
    "ProtocolError",
    "ReplayError",
    "ServerError",
    "StoreFailureError",
    "StreamReplay",
    "StreamSubscriber",
    "Subscriber",
    "ThrottledError",
    "UnauthorizedError",
    "UnavailableError",
    "UnknownOutcomeError",
    "VenueFailureError",
    "error_for",
    "new_request_id",
]
