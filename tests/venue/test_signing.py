"""Signing against the venue's documented vectors (reference §A.2) and Ed25519 round trip."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from oexec.config import VenueConfig
from oexec.errors import VenueAuthError
from oexec.venue.binance.endpoints import Ep
from oexec.venue.binance.signing import (
    Ed25519Signer,
    HmacSigner,
    append_signature,
    encode_params,
    encode_value,
    make_signer,
    signed_string,
)
from oexec.venue.binance.transport import build_request

SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
EXAMPLE_1 = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
    "&recvWindow=5000&timestamp=1591702613943"
)
SIG_1 = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
SIG_3_CLEAN = "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"


def test_hmac_example_1() -> None:
    assert HmacSigner(SECRET).sign(signed_string(EXAMPLE_1, "")) == SIG_1


def test_hmac_example_2_body_only() -> None:
    assert HmacSigner(SECRET).sign(signed_string("", EXAMPLE_1)) == SIG_1


def test_hmac_example_3_query_plus_body_without_separator() -> None:
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = "quantity=1&price=9000&recvWindow=5000&timestamp=1591702613943"
    assert HmacSigner(SECRET).sign(signed_string(query, body)) == SIG_3_CLEAN


def test_hmac_signer_is_reusable_per_request() -> None:
    signer = HmacSigner(SECRET)
    assert signer.sign(b"a=1") == signer.sign(b"a=1")
    assert signer.sign(signed_string(EXAMPLE_1, "")) == SIG_1


def test_build_request_signs_exactly_what_is_sent() -> None:
    params = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("quantity", "1"),
        ("price", "9000"),
        ("timeInForce", "GTC"),
        ("recvWindow", "5000"),
        ("timestamp", "1591702613943"),
    ]
    query, body = build_request(Ep.QUERY_ORDER.spec, params, HmacSigner(SECRET))
    assert query == f"{EXAMPLE_1}&signature={SIG_1}" and body == ""
    query, body = build_request(Ep.NEW_ORDER.spec, params, HmacSigner(SECRET))
    assert query == "" and body == f"{EXAMPLE_1}&signature={SIG_1}"


def test_unsigned_request_has_no_signature() -> None:
    query, body = build_request(Ep.TICKER_PRICE.spec, [("symbol", "BTCUSDT")], None)
    assert (query, body) == ("symbol=BTCUSDT", "")


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("BTCUSDT", "BTCUSDT"),
        ("0.001", "0.001"),
        ("abc-_.~", "abc-_.~"),
        ("x:y/z", "x%3Ay%2Fz"),
        ('["a","b"]', "%5B%22a%22%2C%22b%22%5D"),
        ("a+b=c", "a%2Bb%3Dc"),
    ],
)
def test_encode_value_only_when_needed(value: str, encoded: str) -> None:
    assert encode_value(value) == encoded


def test_encode_params_and_signature_last() -> None:
    assert encode_params([("a", "1"), ("b", "x y")]) == "a=1&b=x%20y"
    assert append_signature("a=1", "s") == "a=1&signature=s"
    assert append_signature("", "s") == "signature=s"


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def test_ed25519_signature_verifies_and_is_url_encoded() -> None:
    key = Ed25519PrivateKey.generate()
    signer = Ed25519Signer.from_pem(_pem(key))
    payload = signed_string(EXAMPLE_1, "")
    sig = signer.sign(payload)
    assert "+" not in sig and "/" not in sig and "=" not in sig
    key.public_key().verify(base64.b64decode(unquote(sig)), payload)  # raises if wrong


def test_make_signer_by_key_type() -> None:
    assert isinstance(make_signer(VenueConfig(api_secret=SECRET)), HmacSigner)
    pem = _pem(Ed25519PrivateKey.generate()).decode()
    signer = make_signer(VenueConfig(key_type="ed25519", api_secret=pem))
    assert isinstance(signer, Ed25519Signer)
    with pytest.raises(VenueAuthError):
        make_signer(VenueConfig(key_type="rsa"))
    with pytest.raises(VenueAuthError):
        make_signer(VenueConfig(key_type="ed25519", api_secret="not a pem"))


def test_make_signer_reads_private_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(_pem(Ed25519PrivateKey.generate()))
    assert isinstance(
        make_signer(VenueConfig(key_type="ed25519", private_key_file=str(path))), Ed25519Signer
    )


def test_signers_never_show_secrets() -> None:
    assert SECRET not in repr(HmacSigner(SECRET))
    pem = _pem(Ed25519PrivateKey.generate())
    assert "PRIVATE" not in repr(Ed25519Signer.from_pem(pem))
    assert SECRET not in repr(VenueConfig(api_secret=SECRET))
