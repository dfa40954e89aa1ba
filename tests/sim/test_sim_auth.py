"""Authentication rules of the venue (§A): key, signature over exact bytes, timing."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from oexec.sim.auth import KeyStore, Security, authenticate, check_timing, signed_payload
from oexec.sim.config import AccountConfig
from oexec.sim.engine import SimError

VECTOR_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
VECTOR_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
QUERY = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
    "&recvWindow=5000&timestamp=1591702613943"
)
SIG_1 = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
SIG_3 = "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"
SERVER_MS = 1591702613943 + 10


def params_of(raw: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in raw.split("&") if part)


@pytest.fixture
def keys() -> KeyStore:
    return KeyStore([AccountConfig(key=VECTOR_KEY, secret=VECTOR_SECRET, name="vec")])


def auth(keys: KeyStore, query: str, body: str = "", key: str | None = VECTOR_KEY) -> str | None:
    params = params_of(body) | params_of(query)
    return authenticate(keys, Security.TRADE, key, params, query, body, SERVER_MS)


def code_of(exc: pytest.ExceptionInfo[SimError]) -> int:
    return exc.value.code


def test_official_vector_in_query(keys: KeyStore) -> None:
    assert auth(keys, f"{QUERY}&signature={SIG_1}") == "vec"


def test_official_vector_in_body(keys: KeyStore) -> None:
    assert auth(keys, "", f"{QUERY}&signature={SIG_1}") == "vec"


def test_signature_hex_is_case_insensitive(keys: KeyStore) -> None:
    assert auth(keys, f"{QUERY}&signature={SIG_1.upper()}") == "vec"


def test_mixed_query_and_body_concatenated_without_separator(keys: KeyStore) -> None:
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = f"quantity=1&price=9000&recvWindow=5000&timestamp=1591702613943&signature={SIG_3}"
    assert auth(keys, query, body) == "vec"


def test_signed_bytes_are_exact_not_reencoded() -> None:
    message, sig = signed_payload("a=1%2C2&b=x+y&signature=ab", "")
    assert message == b"a=1%2C2&b=x+y"
    assert sig == "ab"


def test_tampered_payload_is_bad_signature(keys: KeyStore) -> None:
    with pytest.raises(SimError) as exc:
        auth(keys, f"{QUERY.replace('9000', '9001')}&signature={SIG_1}")
    assert code_of(exc) == -1022


@pytest.mark.parametrize(
    ("key", "code", "status"),
    [(None, -2015, 401), ("", -2015, 401), ("bad key!", -2014, 401), ("unknownkey", -2015, 401)],
)
def test_api_key_errors(keys: KeyStore, key: str | None, code: int, status: int) -> None:
    with pytest.raises(SimError) as exc:
        auth(keys, f"{QUERY}&signature={SIG_1}", key=key)
    assert (exc.value.code, exc.value.http_status) == (code, status)


def test_missing_signature_and_timestamp_are_1102(keys: KeyStore) -> None:
    with pytest.raises(SimError) as exc:
        auth(keys, QUERY)
    assert code_of(exc) == -1102 and "signature" in exc.value.msg
    with pytest.raises(SimError) as exc:
        auth(keys, "symbol=BTCUSDT&signature=00")
    assert code_of(exc) == -1102 and "timestamp" in exc.value.msg


def test_user_stream_needs_key_only(keys: KeyStore) -> None:
    assert authenticate(keys, Security.USER_STREAM, VECTOR_KEY, {}, "", "", 0) == "vec"
    assert authenticate(keys, Security.NONE, None, {}, "", "", 0) is None
    with pytest.raises(SimError) as exc:
        authenticate(keys, Security.USER_STREAM, None, {}, "", "", 0)
    assert code_of(exc) == -2015


@pytest.mark.parametrize(
    ("timestamp", "window", "code"),
    [
        (SERVER_MS - 5000, None, None),
        (SERVER_MS - 5001, None, -1021),
        (SERVER_MS + 999, None, None),
        (SERVER_MS + 1000, None, -1021),
        (SERVER_MS - 59_000, "60000", None),
        (SERVER_MS, "60001", -1130),
        (SERVER_MS, "0", -1130),
        (SERVER_MS - 100, "50", -1021),
    ],
)
def test_timing_rule(timestamp: int, window: str | None, code: int | None) -> None:
    params = {"timestamp": str(timestamp)} | ({"recvWindow": window} if window else {})
    if code is None:
        check_timing(params, SERVER_MS)
        return
    with pytest.raises(SimError) as exc:
        check_timing(params, SERVER_MS)
    assert code_of(exc) == code


def test_recv_window_over_max_rejected_before_signature(keys: KeyStore) -> None:
    raw = f"symbol=X&recvWindow=70000&timestamp={SERVER_MS}&signature=00"
    with pytest.raises(SimError) as exc:
        auth(keys, raw)
    assert code_of(exc) == -1130


def test_stale_timestamp_with_valid_signature_is_1021(keys: KeyStore) -> None:
    params = params_of(QUERY)
    with pytest.raises(SimError) as exc:
        authenticate(
            keys,
            Security.USER_DATA,
            VECTOR_KEY,
            params,
            f"{QUERY}&signature={SIG_1}",
            "",
            SERVER_MS + 60_000,
        )
    assert code_of(exc) == -1021


def ed25519_account() -> tuple[Ed25519PrivateKey, KeyStore]:
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return private, KeyStore([AccountConfig(key="edkey", ed25519_public_key=pem.decode())])


def test_ed25519_signature_accepted_and_tamper_rejected() -> None:
    from urllib.parse import quote

    private, keys = ed25519_account()
    payload = f"symbol=BTCUSDT&timestamp={SERVER_MS}"
    signature = base64.b64encode(private.sign(payload.encode())).decode()
    raw = f"{payload}&signature={quote(signature, safe='')}"
    params = params_of(payload)
    assert authenticate(keys, Security.TRADE, "edkey", params, raw, "", SERVER_MS) == "edkey"
    # unencoded '+' in the signature still verifies (decoded as space by form rules)
    raw_plain = f"{payload}&signature={signature}"
    assert authenticate(keys, Security.TRADE, "edkey", params, raw_plain, "", SERVER_MS)
    with pytest.raises(SimError) as exc:
        authenticate(keys, Security.TRADE, "edkey", params, raw + "0", "", SERVER_MS)
    assert code_of(exc) == -1022


def test_credential_repr_hides_secret(keys: KeyStore) -> None:
    account = AccountConfig(key="k", secret="s3cr3t-value")
    assert "s3cr3t-value" not in repr(account)
    assert VECTOR_SECRET not in repr(keys.lookup(VECTOR_KEY))
