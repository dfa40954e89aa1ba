"""Optional CURVE encryption and client authentication for the ROUTER socket.

Enabled when ``FrontConfig.curve_secret_key_file`` names a zmq certificate (as written
by ``zmq.auth.create_certificates``). Clients must then hold a key pair and, when
``curve_allowed_clients_dir`` is set, have their public certificate in that directory.
"""

from __future__ import annotations

import zmq
import zmq.asyncio
import zmq.auth
from zmq.auth.asyncio import AsyncioAuthenticator

from oexec.config import FrontConfig


async def enable_curve(
    context: zmq.asyncio.Context, sock: zmq.asyncio.Socket, config: FrontConfig
) -> AsyncioAuthenticator | None:
    """Make ``sock`` a CURVE server before it binds; returns the authenticator to stop."""
    if not config.curve_secret_key_file:
        return None
    public, secret = zmq.auth.load_certificate(config.curve_secret_key_file)
    if secret is None:
        raise ValueError("curve_secret_key_file holds no secret key")
    authenticator: AsyncioAuthenticator | None = None
    if config.curve_allowed_clients_dir:
        authenticator = AsyncioAuthenticator(context)
        authenticator.start()
        authenticator.configure_curve(domain="*", location=config.curve_allowed_clients_dir)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return authenticator
