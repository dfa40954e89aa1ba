"""CURVE encryption and client authentication for the daemon's sockets (ROUTER and PUB).

Enabled when ``FrontConfig.curve_secret_key_file`` names a zmq certificate (as written
by ``zmq.auth.create_certificates``): every socket of the daemon becomes a CURVE server
with that key, so requests, replies and events are encrypted. With
``curve_allowed_clients_dir`` only clients whose public certificate is in that
directory get through; the others' handshakes are refused by the ZAP handler and
they never reach the daemon's code.

libzmq allows one ZAP handler per context, and a process may hold several daemons (tests)
with different allow-lists, so one authenticator per context is shared, reference
counted, and each daemon's sockets get a ZAP domain of their own.

``config_loader.validate_config`` refuses a non-loopback endpoint without both
settings (``is_loopback``) unless ``front.allow_plaintext_remote`` is set.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import zmq
import zmq.asyncio
import zmq.auth
from zmq.auth.asyncio import AsyncioAuthenticator

from oexec.config import FrontConfig

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})
#: id(context) -> (authenticator, users); one ZAP handler per context.
_AUTHENTICATORS: dict[int, tuple[AsyncioAuthenticator, int]] = {}


def is_loopback(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on a loopback address; False for ``*``,
    0.0.0.0, interface names, other addresses (which reach other machines)."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    return all(_loopback_host(host) for host in rest.rsplit(":", 1)[0].split(";"))


def _loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a DNS name: may face the network


class CurveHandle:
    """One socket's share of the context's authenticator; ``stop()`` releases it."""

    def __init__(self, context: zmq.asyncio.Context, domain: str | None) -> None:
        self._context = context
        self._domain = domain

    def stop(self) -> None:
        if self._domain is None:
            return
        key = id(self._context)
        authenticator, users = _AUTHENTICATORS[key]
        self._domain = None
        if users > 1:
            _AUTHENTICATORS[key] = (authenticator, users - 1)
            return
        del _AUTHENTICATORS[key]
        authenticator.stop()


def _authenticator(context: zmq.asyncio.Context) -> AsyncioAuthenticator:
    key = id(context)
    if key in _AUTHENTICATORS:
        authenticator, users = _AUTHENTICATORS[key]
        _AUTHENTICATORS[key] = (authenticator, users + 1)
        return authenticator
    authenticator = AsyncioAuthenticator(context)
    authenticator.start()
    _AUTHENTICATORS[key] = (authenticator, 1)
    return authenticator


async def enable_curve(
    context: zmq.asyncio.Context, sock: zmq.Socket[Any], config: FrontConfig
) -> CurveHandle | None:
    """Make ``sock`` a CURVE server before it binds; returns the handle to stop, or
    None when CURVE is not configured."""
    if not config.curve_secret_key_file:
        return None
    public, secret = zmq.auth.load_certificate(config.curve_secret_key_file)
    if secret is None:
        raise ValueError("curve_secret_key_file holds no secret key")
    domain = None
    if config.curve_allowed_clients_dir:
        domain = f"oexec-{uuid.uuid4().hex[:12]}"
        authenticator = _authenticator(context)
        authenticator.configure_curve(domain=domain, location=config.curve_allowed_clients_dir)
        sock.zap_domain = domain.encode()
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return CurveHandle(context, domain)
