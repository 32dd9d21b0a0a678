"""The event-stream codec against botocore's decoder, the shared test vectors and properties."""

from __future__ import annotations

import base64
import datetime
import json
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import DuplicateHeader, EventStreamBuffer
from botocore.parsers import EventStreamJSONParser
from botocore.session import get_session
from hypothesis import given, settings
from hypothesis import strategies as st

from spendgate.bedrock.eventstream import (
    Decoder,
    Frame,
    HeaderValue,
    Typed,
    chunk_bytes,
    encode_chunk,
    encode_event,
    encode_exception,
    encode_frame,
)
from spendgate.errors import EventStreamError

VECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "aws" / "eventstream-test-vectors.json"
_INT_RANGES = {2: 7, 3: 15, 4: 31, 5: 63}


def _vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())["vectors"]
    return vectors


def botocore_messages(data: bytes) -> list[Any]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def as_botocore(value: HeaderValue | Typed) -> object:
    """What botocore's header parser yields for a value we encoded."""
    if isinstance(value, Typed):
        return value.value
    if isinstance(value, datetime.datetime):
        return (value - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)) // datetime.timedelta(
            milliseconds=1
        )
    if isinstance(value, uuid.UUID):
        return value.bytes
    return value


def as_decoded(value: HeaderValue | Typed) -> object:
    return value.value if isinstance(value, Typed) else value


def raw_frame(header_bytes: bytes, payload: bytes = b"") -> bytes:
    """A frame with arbitrary header bytes and correct CRCs, built independently of the encoder."""
    prelude = struct.pack("!II", 16 + len(header_bytes) + len(payload), len(header_bytes))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + header_bytes + payload
    return body + struct.pack("!I", zlib.crc32(body))


# --- strategies ---------------------------------------------------------------------------------

names = st.text(min_size=1, max_size=12).filter(lambda n: len(n.encode()) <= 255)
typed_ints = st.sampled_from(sorted(_INT_RANGES)).flatmap(
    lambda t: st.integers(-(2 ** _INT_RANGES[t]), 2 ** _INT_RANGES[t] - 1).map(
        lambda v: Typed(t, v)
    )
)
timestamps = st.integers(-(10**12), 10**13).map(
    lambda ms: (
        datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(milliseconds=ms)
    )
)
header_values: st.SearchStrategy[HeaderValue | Typed] = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    typed_ints,
    st.binary(max_size=64),
    st.text(max_size=64),
    timestamps,
    st.uuids(),
)
headers_st = st.dictionaries(names, header_values, max_size=8)
frames_st = st.tuples(headers_st, st.binary(max_size=256))


# --- the shared vectors -------------------------------------------------------------------------


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_vectors_decode_like_botocore(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    decoder = Decoder()
    frames = decoder.feed(data)
    decoder.close()
    expected = botocore_messages(data)
    assert [(f.headers, f.payload) for f in frames] == [(m.headers, m.payload) for m in expected]
    assert b"".join(encode_frame(f.headers, f.payload) for f in frames) == data


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_vectors_match_recorded_botocore_parse(vector: dict[str, Any]) -> None:
    frames = Decoder().feed(bytes.fromhex(vector["hex"]))
    assert len(frames) == len(vector["botocore_parse"])
    for frame, parsed in zip(frames, vector["botocore_parse"], strict=True):
        if "__raised__" in parsed:
            assert frame.message_type == "exception"
            assert frame.exception_type == parsed["code"]
            assert frame.json()["message"] == parsed["message"]
            continue
        ((event_type, members),) = parsed.items()
        assert frame.event_type == event_type
        if event_type == "chunk":
            assert chunk_bytes(frame).decode() == members["bytes"]
        else:
            body = frame.json()
            assert {k: body[k] for k in members} == members


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_vectors_decode_byte_by_byte(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    decoder = Decoder()
    frames = [f for i in range(len(data)) for f in decoder.feed(data[i : i + 1])]
    assert frames == Decoder().feed(data)
    assert decoder.buffered == 0


# --- properties ---------------------------------------------------------------------------------


@given(frames_st)
def test_round_trip(frame: tuple[dict[str, HeaderValue | Typed], bytes]) -> None:
    headers, payload = frame
    (decoded,) = Decoder().feed(encode_frame(headers, payload))
    assert decoded == Frame({k: as_decoded(v) for k, v in headers.items()}, payload)
    assert list(decoded.headers) == list(headers)


@given(frames_st)
def test_botocore_decodes_what_we_encode(
    frame: tuple[dict[str, HeaderValue | Typed], bytes],
) -> None:
    headers, payload = frame
    (message,) = botocore_messages(encode_frame(headers, payload))
    assert message.headers == {k: as_botocore(v) for k, v in headers.items()}
    assert message.payload == payload


@given(st.lists(frames_st, min_size=1, max_size=5), st.data())
def test_any_split_yields_the_same_frames(
    frames: list[tuple[dict[str, HeaderValue | Typed], bytes]], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(h, p) for h, p in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    decoder = Decoder()
    seen: list[Frame] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        seen += decoder.feed(stream[start:end])
    decoder.close()
    assert seen == [Frame({k: as_decoded(v) for k, v in h.items()}, p) for h, p in frames]
    assert decoder.buffered == 0


@settings(max_examples=300)
@given(frames_st, st.data())
def test_any_flipped_byte_is_a_crc_error(
    frame: tuple[dict[str, HeaderValue | Typed], bytes], data: st.DataObject
) -> None:
    first = encode_event("messageStart", {"role": "assistant"})
    encoded = encode_frame(*frame)
    index = data.draw(st.integers(0, len(encoded) - 1))
    mask = data.draw(st.integers(1, 255))
    corrupted = bytearray(encoded)
    corrupted[index] ^= mask
    decoder = Decoder()
    assert len(decoder.feed(first)) == 1
    with pytest.raises(EventStreamError) as info:
        decoder.feed(bytes(corrupted))
    check = "prelude CRC" if index < 12 else "message CRC"
    assert check in str(info.value)
    assert f"byte offset {len(first)}" in str(info.value)
    with pytest.raises(EventStreamError, match="already failed"):
        decoder.feed(b"")


# --- errors -------------------------------------------------------------------------------------


def test_truncated_stream_is_reported_on_close() -> None:
    data = encode_event("messageStop", {"stopReason": "end_turn"})
    decoder = Decoder()
    assert decoder.feed(data[:-3]) == []
    assert decoder.buffered == len(data) - 3
    with pytest.raises(EventStreamError, match="truncated"):
        decoder.close()


@pytest.mark.parametrize(
    ("decoder", "frame", "problem"),
    [
        (Decoder(max_payload=10), encode_frame({}, b"x" * 11), "payload length 11"),
        (Decoder(max_headers=8), encode_frame({"name": "value"}, b""), "headers length"),
        (
            Decoder(),
            b"\x00\x00\x00\x0a\x00\x00\x00\x00"
            + struct.pack("!I", zlib.crc32(b"\x00\x00\x00\x0a\x00\x00\x00\x00")),
            "too small",
        ),
    ],
)
def test_lengths_out_of_range(decoder: Decoder, frame: bytes, problem: str) -> None:
    with pytest.raises(EventStreamError, match=problem):
        decoder.feed(frame)


def test_default_limits_are_botocore_limits() -> None:
    header_bytes = b"\x01a\x06" + struct.pack("!H", 0)
    too_big = struct.pack("!II", 16 + len(header_bytes) + 24 * 1024 * 1024 + 1, len(header_bytes))
    prelude = too_big + struct.pack("!I", zlib.crc32(too_big))
    with pytest.raises(EventStreamError, match="payload length"):
        Decoder().feed(prelude)


@pytest.mark.parametrize(
    ("header_bytes", "problem", "at"),
    [
        (b"\x01a\x07\x00\x01x\x01a\x07\x00\x01y", "duplicate header 'a'", 6),
        (b"\x01a\x0a", "unknown header type 10", 0),
        (b"\x01a\x07\x00\x09xy", "runs past", 0),
        (b"\x00\x07\x00\x01x", "empty header name", 0),
        (b"\x05ab", "truncated", 0),
        (b"\x01a\x04\x00\x00", "runs past", 0),
        (b"\x02\xff\xfe\x00", "not UTF-8", 0),
        (b"\x01a\x07\x00\x02\xff\xfe", "malformed value", 0),
    ],
)
def test_malformed_headers(header_bytes: bytes, problem: str, at: int) -> None:
    first = encode_event("x", b"")
    decoder = Decoder()
    decoder.feed(first)
    with pytest.raises(EventStreamError, match=problem) as info:
        decoder.feed(raw_frame(header_bytes))
    assert f"byte offset {len(first) + 12 + at}:" in str(info.value)


def test_botocore_agrees_duplicate_headers_are_invalid() -> None:
    with pytest.raises(DuplicateHeader):
        botocore_messages(raw_frame(b"\x01a\x07\x00\x01x\x01a\x07\x00\x01y"))


def test_frame_json_error_is_an_event_stream_error() -> None:
    (frame,) = Decoder().feed(encode_event("metadata", b"{not json"))
    with pytest.raises(EventStreamError, match="not valid JSON"):
        frame.json()


# --- encoder details ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "wire_type"), [(2**31 - 1, 4), (-(2**31), 4), (2**31, 5)])
def test_plain_int_wire_type(value: int, wire_type: int) -> None:
    assert encode_frame({"n": value}, b"")[12 + 2] == wire_type


@pytest.mark.parametrize(
    "headers",
    [
        {"n": Typed(2, 128)},
        {"n": Typed(6, 1)},
        {"": "empty"},
        {"x" * 256: "long"},
        {"t": datetime.datetime(2026, 1, 1)},  # naive
        {"s": "x" * 65536},
    ],
)
def test_unencodable_headers(headers: dict[str, HeaderValue | Typed]) -> None:
    with pytest.raises(ValueError):
        encode_frame(headers, b"")


def test_event_and_exception_headers_in_bedrock_order() -> None:
    event, exception = botocore_messages(
        encode_event("contentBlockDelta", {"delta": {"text": "Hé"}, "contentBlockIndex": 0})
        + encode_exception("throttlingException", {"message": "slow down"})
    )
    assert list(event.headers.items()) == [
        (":event-type", "contentBlockDelta"),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ]
    assert json.loads(event.payload) == {"delta": {"text": "Hé"}, "contentBlockIndex": 0}
    assert b" " not in event.payload
    assert list(exception.headers) == [":exception-type", ":content-type", ":message-type"]
    assert exception.headers[":message-type"] == "exception"


def test_chunk_is_parsed_by_botocore_invoke_stream_shape() -> None:
    model_json = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}}
    data = encode_chunk(model_json, padding="abcdef")
    shape = (
        get_session()
        .get_service_model("bedrock-runtime")
        .operation_model("InvokeModelWithResponseStream")
        .output_shape.members["body"]
    )
    (message,) = botocore_messages(data)
    parsed = EventStreamJSONParser().parse(message.to_response_dict(), shape)
    assert json.loads(parsed["chunk"]["bytes"]) == model_json
    (frame,) = Decoder().feed(data)
    assert chunk_bytes(frame) == parsed["chunk"]["bytes"]
    assert frame.json()["p"] == "abcdef"


def test_chunk_without_padding_and_from_bytes() -> None:
    (frame,) = Decoder().feed(encode_chunk(b'{"a":1}'))
    assert frame.json() == {"bytes": base64.b64encode(b'{"a":1}').decode()}


@pytest.mark.parametrize(
    "data",
    [
        encode_event("messageStart", {"role": "assistant"}),
        encode_event("chunk", {"nobytes": 1}),
        encode_event("chunk", {"bytes": "***"}),
        encode_exception("throttlingException", {"message": "x"}),
    ],
)
def test_chunk_bytes_rejects_non_chunks(data: bytes) -> None:
    (frame,) = Decoder().feed(data)
    with pytest.raises(EventStreamError):
        chunk_bytes(frame)


def test_large_payload_in_small_pieces() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    data = encode_frame({":message-type": "event"}, payload)
    decoder = Decoder()
    frames = [f for i in range(0, len(data), 1000) for f in decoder.feed(data[i : i + 1000])]
    assert [f.payload for f in frames] == [payload]
