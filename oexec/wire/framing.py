"""ROUTER frame splitting, in exactly one place (docs/wire.md, "Framing").

A ROUTER socket prepends the peer's routing id. What follows depends on the client:

- REQ (or a DEALER imitating one): ``[routing id..., b"", body]`` — routing ids up to
  an empty delimiter frame, then exactly one body frame.
- DEALER without delimiter: ``[routing id, body]``.

The reply goes back with the same prefix (``Route.prefix``) so each client gets the
envelope shape it sent.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from oexec.errors import ErrorCode, WireError


@attrs.frozen(slots=True)
class Route:
    """The frames to put before a reply body: routing ids (+ the delimiter if one came)."""

    prefix: tuple[bytes, ...]


def split_frames(frames: Sequence[bytes]) -> tuple[Route, bytes]:
    """Split one ROUTER message into (route, body).

    Raises WireError(BAD_FRAME) when there is no body or more than one body frame; the
    error still carries the route (``details`` cannot hold bytes, so it is an attribute)
    whenever a reply can be addressed.
    """
    if not frames:
        raise FramingError("empty message", route=None)
    if b"" in frames:
        cut = frames.index(b"")
        if cut == 0:
            raise FramingError("no routing id before the delimiter", route=None)
        route = Route(tuple(frames[: cut + 1]))
        body = frames[cut + 1 :]
    else:
        route = Route((frames[0],))
        body = frames[1:]
    if len(body) != 1:
        raise FramingError(f"expected one body frame, got {len(body)}", route=route)
    return route, body[0]


class FramingError(WireError):
    code = ErrorCode.BAD_FRAME

    def __init__(self, message: str, *, route: Route | None) -> None:
        super().__init__(message, code=ErrorCode.BAD_FRAME)
        self.route = route
