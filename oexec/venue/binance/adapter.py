"""``BinanceUsdmVenue``: the ``Venue`` port for Binance USDⓈ-M futures.

Thin by design: each method names its endpoint, builds parameters (``params.py``),
calls the transport (signing, gate, retries, error mapping) and parses the answer
(``parsing.py`` / ``filters.py``). A second venue is one more module like this one.

Submits (``place_order``, ``modify_order``, ``batch_place``) are never retried here: a
failure after the request may have left raises ``VenueUnknownOutcomeError``, and so
does a 2xx answer we cannot parse (the order may exist). Callers resolve by client id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import aiohttp

from oexec.config import VenueConfig
from oexec.errors import VenueError, VenueRejectedError, VenueUnknownOutcomeError
from oexec.models import ExchangeInfo, Side, VenueOrder, VenueTrade
from oexec.models.account import AccountSettingChange, Balance, Position
from oexec.service.ports import RequestGate, VenueOrderRequest
from oexec.venue.binance.account import (
    MARGIN_TYPES,
    parse_account_balances,
    parse_leverage_change,
    parse_position_risk,
)
from oexec.venue.binance.endpoints import MAX_BATCH_CANCEL, MAX_BATCH_PLACE, Ep
from oexec.venue.binance.errors import batch_element_error
from oexec.venue.binance.filters import parse_exchange_info
from oexec.venue.binance.params import (
    batch_cancel_params,
    batch_orders_param,
    modify_params,
    order_fields,
    order_id_params,
)
from oexec.venue.binance.parsing import (
    VenueParseError,
    dec,
    parse_listen_key,
    parse_order,
    parse_orders,
    parse_user_trades,
)
from oexec.venue.binance.transport import BinanceTransport, Params, VenueObserver
from oexec.venue.binance.ws_transport import BinanceWsApi

log = logging.getLogger(__name__)
#: -4046 "No need to change margin type": the account already has it.
NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046


class BinanceUsdmVenue:
    """One Binance USDⓈ-M account over one shared aiohttp session."""

    name = "binance_usdm"

    def __init__(
        self,
        config: VenueConfig,
        *,
        gate: RequestGate | None = None,
        clock: Callable[[], float] = time.time,
        observer: VenueObserver | None = None,
    ) -> None:
        self.config = config
        self.transport = BinanceTransport(config, gate=gate, clock=clock, observer=observer)
        #: order entry over the WebSocket API ([venue] order_transport = "ws"), else None
        self.ws_api = (
            BinanceWsApi.for_transport(self.transport) if config.order_transport == "ws" else None
        )

    # --- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Open the session and sync the server-time offset (then every interval)."""
        await self.transport.start()
        if self.ws_api is not None:
            await self.ws_api.start(self.transport.session, self.config.connect_timeout_s)

    async def close(self) -> None:
        if self.ws_api is not None:
            await self.ws_api.close()
        await self.transport.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session (the user stream opens its WebSocket on it)."""
        return self.transport.session

    @property
    def time_offset_ms(self) -> int:
        return self.transport.offset_ms

    def now_ms(self) -> int:
        return self.transport.now_ms()

    # --- market data ------------------------------------------------------------------
    async def exchange_info(self) -> ExchangeInfo:
        return parse_exchange_info(await self.transport.call(Ep.EXCHANGE_INFO, ()))

    async def mark_price(self, symbol: str) -> Decimal:
        data = await self.transport.call(Ep.PREMIUM_INDEX, [("symbol", symbol)])
        return dec(_object(data), "markPrice")

    async def ticker_price(self, symbol: str) -> Decimal:
        data = await self.transport.call(Ep.TICKER_PRICE, [("symbol", symbol)])
        return dec(_object(data), "price")

    # --- submits: never retried -------------------------------------------------------
    async def place_order(
        self, request: VenueOrderRequest, *, deadline_s: float | None = None
    ) -> VenueOrder:
        data = await self._order_call(Ep.NEW_ORDER, order_fields(request), deadline_s=deadline_s)
        return _parse_submitted(data, request.client_order_id)

    async def modify_order(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        *,
        client_order_id: str | None = None,
        order_id: str | None = None,
        deadline_s: float | None = None,
    ) -> VenueOrder:
        """Amend a LIMIT order's price and quantity (§C.9); it loses queue priority."""
        params = modify_params(
            symbol, side, quantity, price, client_order_id=client_order_id, order_id=order_id
        )
        data = await self._order_call(Ep.MODIFY_ORDER, params, deadline_s=deadline_s)
        return _parse_submitted(data, client_order_id or order_id or "")

    async def batch_place(
        self, requests: Sequence[VenueOrderRequest], *, deadline_s: float | None = None
    ) -> list[VenueOrder | VenueError]:
        """Up to 5 orders; one result per request, in request order (§C.11)."""
        if not 1 <= len(requests) <= MAX_BATCH_PLACE:
            raise VenueRejectedError(f"batch_place takes 1..{MAX_BATCH_PLACE} orders")
        data = await self.transport.call(
            Ep.BATCH_PLACE, [batch_orders_param(requests)], deadline_s=deadline_s
        )
        if not isinstance(data, list) or len(data) != len(requests):
            raise VenueUnknownOutcomeError("batch answer does not match the request")
        return [
            self._batch_item(item, unknown_on_parse_error=True, ref=r.client_order_id)
            for item, r in zip(data, requests, strict=True)
        ]

    # --- cancels: retried (cancelling twice is harmless) -------------------------------
    async def cancel_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder:
        params = order_id_params(symbol, client_order_id, order_id)
        return parse_order(await self._order_call(Ep.CANCEL_ORDER, params))

    async def batch_cancel(
        self,
        symbol: str,
        *,
        client_order_ids: Sequence[str] = (),
        order_ids: Sequence[str] = (),
    ) -> list[VenueOrder | VenueError]:
        """Up to 10 ids (either list); one result per id, in order."""
        count = len(order_ids) or len(client_order_ids)
        if not 1 <= count <= MAX_BATCH_CANCEL or (order_ids and client_order_ids):
            raise VenueRejectedError(f"batch_cancel takes 1..{MAX_BATCH_CANCEL} ids of one kind")
        params = batch_cancel_params(symbol, client_order_ids=client_order_ids, order_ids=order_ids)
        data = await self.transport.call(Ep.BATCH_CANCEL, params)
        if not isinstance(data, list):
            raise VenueParseError("batch cancel answer is not a list")
        return [self._batch_item(item, unknown_on_parse_error=False, ref="") for item in data]

    async def cancel_all(self, symbol: str) -> None:
        await self.transport.call(Ep.CANCEL_ALL, [("symbol", symbol)])

    async def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> None:
        """Arm (or with 0, disarm) the venue's dead-man switch for ``symbol``."""
        params = [("symbol", symbol), ("countdownTime", str(countdown_ms))]
        await self.transport.call(Ep.COUNTDOWN_CANCEL_ALL, params)

    # --- reads: retried ----------------------------------------------------------------
    async def query_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> VenueOrder:
        params = order_id_params(symbol, client_order_id, order_id)
        return parse_order(await self.transport.call(Ep.QUERY_ORDER, params))

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        params = [("symbol", symbol)] if symbol else []
        data = await self.transport.call(Ep.OPEN_ORDERS, params, has_symbol=bool(symbol))
        return parse_orders(data)

    async def orders_since(
        self, symbol: str, *, start_ms: int, limit: int = 1000
    ) -> list[VenueOrder]:
        """``GET /fapi/v1/allOrders`` from ``startTime`` (weight 5, at most 1000, a window
        under 7 days: reference §B.1 row 18)."""
        params = [("symbol", symbol), ("startTime", str(start_ms)), ("limit", str(limit))]
        return parse_orders(await self.transport.call(Ep.ALL_ORDERS, params))

    async def user_trades(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        start_ms: int | None = None,
        limit: int = 500,
    ) -> list[VenueTrade]:
        params = [("symbol", symbol)]
        if order_id is not None:
            params.append(("orderId", order_id))
        if start_ms is not None:
            params.append(("startTime", str(start_ms)))
        params.append(("limit", str(limit)))
        return parse_user_trades(await self.transport.call(Ep.USER_TRADES, params))

    # --- account ----------------------------------------------------------------------
    async def position_risk(self, symbol: str | None = None) -> list[Position]:
        """Every position leg (flat ones too), with leverage and margin type (§3.7)."""
        params = [("symbol", symbol)] if symbol else []
        return parse_position_risk(await self.transport.call(Ep.POSITION_RISK, params))

    async def account_balances(self) -> list[Balance]:
        """Wallet, available and margin balance per asset (``/fapi/v2/account``)."""
        return parse_account_balances(await self.transport.call(Ep.ACCOUNT, ()))

    async def set_leverage(self, symbol: str, leverage: int) -> AccountSettingChange:
        params = [("symbol", symbol), ("leverage", str(leverage))]
        return parse_leverage_change(await self.transport.call(Ep.CHANGE_LEVERAGE, params))

    async def set_margin_type(self, symbol: str, margin_type: str) -> AccountSettingChange:
        """``margin_type`` cross|isolated; asking for the current one is not an error."""
        wanted = MARGIN_TYPES.get(margin_type.lower())
        if wanted is None:
            raise VenueRejectedError(f"margin type must be cross or isolated: {margin_type!r}")
        venue_name = "CROSSED" if wanted == "cross" else "ISOLATED"
        params = [("symbol", symbol), ("marginType", venue_name)]
        try:
            await self.transport.call(Ep.CHANGE_MARGIN_TYPE, params)
        except VenueRejectedError as exc:
            if exc.venue_code != NO_NEED_TO_CHANGE_MARGIN_TYPE:
                raise
        return AccountSettingChange(symbol=symbol, margin_type=wanted)

    # --- user stream keys --------------------------------------------------------------
    async def create_listen_key(self) -> str:
        """Create (or, if one is active, extend and return) the account's listenKey."""
        return parse_listen_key(await self.transport.call(Ep.LISTEN_KEY_CREATE, ()))

    async def keepalive_listen_key(self) -> None:
        """Extend the key 60 min; raises ListenKeyExpiredError (-1125) if it is gone."""
        await self.transport.call(Ep.LISTEN_KEY_KEEPALIVE, ())

    async def close_listen_key(self) -> None:
        await self.transport.call(Ep.LISTEN_KEY_CLOSE, ())

    # --- helpers -----------------------------------------------------------------------
    async def _order_call(self, ep: Ep, params: Params, *, deadline_s: float | None = None) -> Any:
        """The transport per request: the WebSocket API when configured and up, else REST."""
        if self.ws_api is None:
            return await self.transport.call(ep, params, deadline_s=deadline_s)
        return await self.ws_api.call_or_rest(self.transport, ep, params, deadline_s=deadline_s)

    def _batch_item(
        self, item: Any, *, unknown_on_parse_error: bool, ref: str
    ) -> VenueOrder | VenueError:
        if isinstance(item, dict) and "orderId" not in item and "code" in item:
            return batch_element_error(item, now_ms=self.now_ms())
        if unknown_on_parse_error:
            try:
                return parse_order(item)
            except VenueParseError as exc:
                return _unknown_from_parse(exc, ref)
        return parse_order(item)


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise VenueParseError("venue answer is not an object")
    return data


def _parse_submitted(data: Any, ref: str) -> VenueOrder:
    """A 2xx submit answer; unreadable means the order may exist: unknown outcome."""
    try:
        return parse_order(data)
    except VenueParseError as exc:
        raise _unknown_from_parse(exc, ref) from None


def _unknown_from_parse(exc: VenueParseError, ref: str) -> VenueUnknownOutcomeError:
    log.error("unreadable submit answer for %s: %s", ref, exc.message)
    return VenueUnknownOutcomeError(
        f"venue accepted the request but its answer is unreadable: {exc.message}",
        details={"client_order_id": ref},
    )
