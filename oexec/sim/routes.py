"""The venue's REST surface as a table: (method, path) -> security, weight, order cost, call.

Paths and versions are the ones Binance serves and that ccxt, python-binance and
binance-futures-connector call (§B.1). Weights follow §B.1/§E.2; ``orders`` is the
(10 s, 1 min) ORDERS cost. Handlers are thin: they pick the engine method and, for new
orders, register read-after-write lag. Everything else (auth, limits, faults, JSON)
happens once in app.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from oexec.sim.auth import Security
from oexec.sim.engine import SimError
from oexec.sim.state import SimState

Params = Mapping[str, str]


@attrs.frozen
class Call:
    """One authenticated request, as a handler sees it."""

    state: SimState
    path: str
    params: Params
    account: str  # "" for NONE endpoints
    server_ms: int


Handler = Callable[[Call], Any]
Weight = Callable[[Params], int]


@attrs.frozen
class Endpoint:
    security: Security
    handler: Handler
    weight: Weight
    orders: tuple[int, int] = (0, 0)


def fixed(weight: int) -> Weight:
    return lambda _params: weight


def by_symbol(with_symbol: int, without: int) -> Weight:
    return lambda params: with_symbol if params.get("symbol") else without


def _depth_weight(params: Params) -> int:
    limit = params.get("limit", "500")
    table = {"5": 2, "10": 2, "20": 2, "50": 2, "100": 5, "500": 10, "1000": 20}
    return table.get(limit, 10)


def _klines_weight(params: Params) -> int:
    """By ``limit`` (§4): [1,100) 1, [100,500) 2, [500,1000] 5, above 10; default 500."""
    text = params.get("limit", "500")
    limit = int(text) if text.isdigit() else 500
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _klines(kind: str) -> Handler:
    def handler(call: Call) -> Any:
        return call.state.exchange.klines(call.params, kind)

    return handler


def _public(name: str) -> Handler:
    def handler(call: Call) -> Any:
        return getattr(call.state.exchange, name)(call.params)

    return handler


def _symbol(params: Params) -> str | None:
    return params.get("symbol") or None


# -- handlers ---------------------------------------------------------------------------
def _new_order(call: Call) -> Any:
    result = call.state.exchange.new_order(call.account, call.params)
    call.state.note_accepted(call.account, call.path, result)
    return result


def _batch_new(call: Call) -> Any:
    results = call.state.exchange.batch_new_orders(call.account, call.params)
    for item in results:
        if "orderId" in item:
            call.state.note_accepted(call.account, call.path, item)
    return results


def _query(method: Callable[[str, Params], Any]) -> Handler:
    """A single-order query, subject to read-after-write lag."""

    def handler(call: Call) -> Any:
        call.state.lag.check(call.account, call.params, call.state.now_ms())
        return method(call.account, call.params)

    return handler


def _account_method(name: str, *args: Any) -> Handler:
    def handler(call: Call) -> Any:
        return getattr(call.state.exchange, name)(call.account, *args)

    return handler


def _with_params(name: str) -> Handler:
    def handler(call: Call) -> Any:
        return getattr(call.state.exchange, name)(call.account, call.params)

    return handler


def _market(name: str) -> Handler:
    def handler(call: Call) -> Any:
        return getattr(call.state.exchange, name)(_symbol(call.params))

    return handler


def _depth(call: Call) -> Any:
    symbol = call.params.get("symbol")
    if not symbol:
        raise SimError(
            -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
        )
    limit = call.params.get("limit", "500")
    if not limit.isdigit():
        raise SimError(-1100, "Illegal characters found in parameter 'limit'.")
    return call.state.exchange.depth(symbol, int(limit))


def _exchange_info(call: Call) -> Any:
    return call.state.exchange.exchange_info(call.state.limiter.exchange_info_limits())


def _order_rate_limit(call: Call) -> Any:
    return [
        limit
        for limit in call.state.limiter.exchange_info_limits()
        if limit["rateLimitType"] == "ORDERS"
    ]


def _position_side_dual_get(call: Call) -> Any:
    return call.state.exchange.position_side_dual(call.account, None)


def _query_order(call: Call) -> Any:
    return _query(call.state.exchange.query_order)(call)


def _open_order(call: Call) -> Any:
    return _query(call.state.exchange.open_order)(call)


def _listen_key(action: str) -> Handler:
    def handler(call: Call) -> Any:
        return getattr(call.state.streams, action)(call.account)

    return handler


N, T, U, S = Security.NONE, Security.TRADE, Security.USER_DATA, Security.USER_STREAM
ORDER = (1, 1)
BATCH = (5, 1)


def _table() -> dict[tuple[str, str], Endpoint]:
    table: dict[tuple[str, str], Endpoint] = {
        ("GET", "/fapi/v1/ping"): Endpoint(N, lambda call: {}, fixed(1)),
        ("GET", "/fapi/v1/time"): Endpoint(
            N, lambda call: {"serverTime": call.server_ms}, fixed(1)
        ),
        ("GET", "/fapi/v1/exchangeInfo"): Endpoint(N, _exchange_info, fixed(1)),
        ("GET", "/fapi/v1/ticker/24hr"): Endpoint(N, _market("ticker_24hr"), by_symbol(1, 40)),
        ("GET", "/fapi/v1/ticker/bookTicker"): Endpoint(N, _market("book_ticker"), by_symbol(2, 5)),
        ("GET", "/fapi/v1/premiumIndex"): Endpoint(N, _market("premium_index"), by_symbol(1, 10)),
        ("GET", "/fapi/v1/depth"): Endpoint(N, _depth, _depth_weight),
        ("GET", "/fapi/v1/klines"): Endpoint(N, _klines("trade"), _klines_weight),
        ("GET", "/fapi/v1/markPriceKlines"): Endpoint(N, _klines("mark"), _klines_weight),
        ("GET", "/fapi/v1/indexPriceKlines"): Endpoint(N, _klines("index"), _klines_weight),
        ("GET", "/fapi/v1/aggTrades"): Endpoint(N, _public("agg_trades"), fixed(20)),
        ("GET", "/fapi/v1/trades"): Endpoint(N, _public("recent_trades"), fixed(5)),
        ("GET", "/fapi/v1/fundingRate"): Endpoint(N, _public("funding_rate_history"), fixed(1)),
        ("GET", "/fapi/v1/fundingInfo"): Endpoint(
            N, lambda call: call.state.exchange.funding_info(), fixed(1)
        ),
        ("GET", "/fapi/v1/openInterest"): Endpoint(N, _public("open_interest"), fixed(1)),
        # orders
        ("POST", "/fapi/v1/order"): Endpoint(T, _new_order, fixed(0), ORDER),
        ("POST", "/fapi/v1/order/test"): Endpoint(T, _with_params("test_order"), fixed(1)),
        ("PUT", "/fapi/v1/order"): Endpoint(T, _with_params("modify_order"), fixed(0), ORDER),
        ("DELETE", "/fapi/v1/order"): Endpoint(T, _with_params("cancel_order"), fixed(1)),
        ("GET", "/fapi/v1/order"): Endpoint(U, _query_order, fixed(1)),
        ("GET", "/fapi/v1/openOrder"): Endpoint(U, _open_order, fixed(1)),
        ("GET", "/fapi/v1/openOrders"): Endpoint(U, _with_params("open_orders"), by_symbol(1, 40)),
        ("GET", "/fapi/v1/allOrders"): Endpoint(U, _with_params("all_orders"), fixed(5)),
        ("POST", "/fapi/v1/batchOrders"): Endpoint(T, _batch_new, fixed(5), BATCH),
        ("PUT", "/fapi/v1/batchOrders"): Endpoint(
            T, _with_params("batch_modify_orders"), fixed(5), BATCH
        ),
        ("DELETE", "/fapi/v1/batchOrders"): Endpoint(
            T, _with_params("batch_cancel_orders"), fixed(1)
        ),
        ("DELETE", "/fapi/v1/allOpenOrders"): Endpoint(
            T, _with_params("cancel_all_open_orders"), fixed(1)
        ),
        ("POST", "/fapi/v1/countdownCancelAll"): Endpoint(
            T, _with_params("countdown_cancel_all"), fixed(10)
        ),
        ("GET", "/fapi/v1/userTrades"): Endpoint(U, _with_params("user_trades"), fixed(5)),
        # algo (conditional) orders
        ("POST", "/fapi/v1/algoOrder"): Endpoint(
            T, _with_params("new_algo_order"), fixed(0), ORDER
        ),
        ("DELETE", "/fapi/v1/algoOrder"): Endpoint(T, _with_params("cancel_algo_order"), fixed(1)),
        ("GET", "/fapi/v1/algoOrder"): Endpoint(U, _with_params("query_algo_order"), fixed(1)),
        ("GET", "/fapi/v1/openAlgoOrders"): Endpoint(
            U, _with_params("open_algo_orders"), by_symbol(1, 40)
        ),
        ("GET", "/fapi/v1/allAlgoOrders"): Endpoint(U, _with_params("all_algo_orders"), fixed(5)),
        ("DELETE", "/fapi/v1/algoOpenOrders"): Endpoint(
            T, _with_params("cancel_all_algo_orders"), fixed(1)
        ),
        # account
        ("POST", "/fapi/v1/leverage"): Endpoint(T, _with_params("change_leverage"), fixed(1)),
        ("POST", "/fapi/v1/marginType"): Endpoint(T, _with_params("change_margin_type"), fixed(1)),
        ("POST", "/fapi/v1/positionSide/dual"): Endpoint(
            T, _with_params("position_side_dual"), fixed(1)
        ),
        ("GET", "/fapi/v1/positionSide/dual"): Endpoint(U, _position_side_dual_get, fixed(30)),
        ("GET", "/fapi/v1/multiAssetsMargin"): Endpoint(
            U, lambda call: {"multiAssetsMargin": False}, fixed(30)
        ),
        ("GET", "/fapi/v1/rateLimit/order"): Endpoint(U, _order_rate_limit, fixed(1)),
        ("GET", "/fapi/v1/symbolConfig"): Endpoint(U, _with_params("symbol_config"), fixed(5)),
        ("GET", "/fapi/v1/accountConfig"): Endpoint(U, _account_method("account_config"), fixed(5)),
        ("GET", "/fapi/v1/commissionRate"): Endpoint(U, _with_params("commission_rate"), fixed(20)),
        ("GET", "/fapi/v1/income"): Endpoint(U, _with_params("income"), fixed(30)),
        # user stream
        ("POST", "/fapi/v1/listenKey"): Endpoint(S, _listen_key("create"), fixed(1)),
        ("PUT", "/fapi/v1/listenKey"): Endpoint(S, _listen_key("keepalive"), fixed(1)),
        ("DELETE", "/fapi/v1/listenKey"): Endpoint(S, _listen_key("close"), fixed(1)),
    }
    for version in ("v1", "v2"):
        table[("GET", f"/fapi/{version}/ticker/price")] = Endpoint(
            N, _market("ticker_price"), by_symbol(1, 2)
        )
        table[("GET", f"/fapi/{version}/leverageBracket")] = Endpoint(
            U, _with_params("leverage_bracket"), fixed(1)
        )
    for number, version in ((2, "v1"), (2, "v2"), (3, "v3")):
        table[("GET", f"/fapi/{version}/account")] = Endpoint(
            U, _account_method("account", number), fixed(5)
        )
        table[("GET", f"/fapi/{version}/balance")] = Endpoint(
            U, _account_method("balance", number), fixed(5)
        )
        table[("GET", f"/fapi/{version}/positionRisk")] = Endpoint(
            U, _position_risk(number), fixed(5)
        )
    return table


def _position_risk(version: int) -> Handler:
    def handler(call: Call) -> Any:
        return call.state.exchange.position_risk(call.account, call.params, version)

    return handler


ENDPOINTS: dict[tuple[str, str], Endpoint] = _table()
KNOWN_PATHS = frozenset(path for _, path in ENDPOINTS)
