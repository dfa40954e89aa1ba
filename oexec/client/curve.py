"""Client side of CURVE: the keys a client needs to reach a daemon that requires it.

A daemon bound off loopback requires CURVE with a client allow-list (docs/wire.md §1).
The operator gives each client the daemon's public certificate and a key pair of its
own, whose public half goes into the daemon's ``curve_allowed_clients_dir``::

    keys = CurveKeys.load("server.key", "alice.key_secret")
    Client(endpoint, curve=keys); AsyncClient(endpoint, curve=keys)
    Subscriber(events_endpoint, curve=keys)

A client not on the list gets no reply at all (its handshake is refused), which shows
as a timeout, never as an error code: an unknown party learns nothing.
"""

from __future__ import annotations

from typing import Any

import attrs
import zmq.auth


@attrs.frozen(repr=False)
class CurveKeys:
    """Z85 keys: the server's public key and this client's key pair."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def load(cls, server_public_file: str, client_secret_file: str) -> CurveKeys:
        """From zmq certificate files (``zmq.auth.create_certificates``)."""
        server_public, _ = zmq.auth.load_certificate(server_public_file)
        public, secret = zmq.auth.load_certificate(client_secret_file)
        if secret is None:
            raise ValueError(f"{client_secret_file} holds no secret key")
        return cls(server_public=server_public, public=public, secret=secret)

    def apply(self, sock: Any) -> None:
        """Make ``sock`` a CURVE client of the daemon (before ``connect``)."""
        sock.curve_serverkey = self.server_public
        sock.curve_publickey = self.public
        sock.curve_secretkey = self.secret

    def __repr__(self) -> str:
        return f"CurveKeys(server_public={self.server_public.decode()!r}, secret=<hidden>)"
