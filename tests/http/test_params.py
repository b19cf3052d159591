"""Parameters from the query string and form body, as Binance reads them."""

from __future__ import annotations

import pytest

from sandex.http.errors import BadParameters
from sandex.http.params import parse_params


def test_query_and_body_merge_and_query_wins() -> None:
    assert parse_params(b"a=1&b=2", b"b=3&c=4") == {"a": "1", "b": "2", "c": "4"}


def test_percent_and_plus_decoding() -> None:
    assert parse_params(b"x=a+b%2Fc%2Bd", b"") == {"x": "a b/c+d"}
    assert parse_params(b"empty=", b"") == {"empty": ""}


@pytest.mark.parametrize(
    ("query", "body", "code"),
    [
        (b"a=1&a=2", b"", -1101),
        (b"", b"a=1&a=1", -1101),
        (b"x=%ff", b"", -1100),
        ("x=é".encode(), b"", -1100),
        (b"&".join(b"p%d=1" % i for i in range(101)), b"", -1101),
    ],
)
def test_bad_parameters(query: bytes, body: bytes, code: int) -> None:
    with pytest.raises(BadParameters) as caught:
        parse_params(query, body)
    assert caught.value.code == code and caught.value.status == 400


@pytest.mark.parametrize(
    "raw",
    [b"a=1&b=&c", b"symbol=BTCUSDT&timestamp=1&signature=ab", b"x=a+b&y=%2F", b"&&a=1&", b"a==b"],
)
def test_fast_path_agrees_with_parse_qsl(raw: bytes) -> None:
    from urllib.parse import parse_qsl

    assert parse_params(raw, b"") == dict(parse_qsl(raw.decode(), keep_blank_values=True))
