"""The gateway's JSON helper gives the standard library's answers, only faster."""

from __future__ import annotations

import json
import math

import pytest

from spendgate.gateway import jsoncodec


@pytest.mark.parametrize(
    "text",
    [
        b'{"messages":[{"role":"user","content":[{"text":"hi \\u00e9"}]}],"n":1.5}',
        b'  {"a": 1, "a": 2} ',  # duplicate keys: the last wins
        '{"caf\u00e9": [true, false, null]}'.encode(),
        b'"\\ud800"',  # a lone surrogate (orjson refuses it)
        b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
        '{"x": 1}'.encode("utf-16"),
    ],
)
def test_loads_matches_the_standard_library(text: bytes) -> None:
    assert jsoncodec.loads(text) == json.loads(text)


def test_loads_accepts_what_json_accepts_beyond_the_standard() -> None:
    assert math.isnan(jsoncodec.loads(b'{"t": NaN}')["t"])
    assert jsoncodec.loads(b"[Infinity]") == [math.inf]


@pytest.mark.parametrize("text", [b"{", b"", b"{'a': 1}", b"\xff\xfe\xfd"])
def test_loads_raises_value_error_for_bad_json(text: bytes) -> None:
    with pytest.raises(ValueError):
        jsoncodec.loads(text)


def test_dumps_is_compact_utf8_in_key_order() -> None:
    value = {"z": 1, "user": "Jos\u00e9", "list": [1, "two"]}
    assert jsoncodec.dumps(value) == b'{"z":1,"user":"Jos\xc3\xa9","list":[1,"two"]}'
    assert json.loads(jsoncodec.dumps(value)) == value
