"""The ``application/vnd.amazon.eventstream`` codec: an incremental decoder and a cheap encoder.

Wire format (bedrock-formats.md §2.2; Smithy "Amazon Event Stream"), all integers big-endian::

    total_length   u32   whole message, including this field and both CRCs (16 bytes overhead)
    headers_length u32
    prelude_crc    u32   CRC32 of the 8 bytes above
    headers        headers_length bytes
    payload        total_length - headers_length - 16 bytes
    message_crc    u32   CRC32 of everything before it (prelude, prelude_crc, headers, payload)

A header is ``name_len u8 | name (UTF-8, 1-255 bytes) | type u8 | value``; a name appears once.

    type 0 true, 1 false (no value)     type 6 bytes      u16 length + bytes
    type 2 int8, 3 int16, 4 int32       type 7 string     u16 length + UTF-8
    type 5 int64                        type 8 timestamp  int64 milliseconds since the epoch
                                        type 9 uuid       16 bytes

Semantic headers (§2.3): ``:message-type`` is ``event`` (with ``:event-type``, ``:content-type``),
``exception`` (with ``:exception-type``) or ``error`` (with ``:error-code``, ``:error-message``).
Decoding maps types 0/1 to ``bool``, 2-5 to ``int``, 6 to ``bytes``, 7 to ``str``, 8 to an aware
UTC ``datetime`` and 9 to ``uuid.UUID``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from spendgate.errors import EventStreamError

HeaderValue = bool | int | bytes | str | datetime.datetime | uuid.UUID

MAX_PAYLOAD = 24 * 1024 * 1024
MAX_HEADERS = 128 * 1024
_PRELUDE = struct.Struct("!III")
_LENGTHS = struct.Struct("!II")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_OVERHEAD = 16
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MS = datetime.timedelta(milliseconds=1)
_INT_TYPES = {
    2: struct.Struct("!b"),
    3: struct.Struct("!h"),
    4: struct.Struct("!i"),
    5: struct.Struct("!q"),
}
_INT32 = (-(2**31), 2**31 - 1)
_JSON_SEPARATORS = (",", ":")


class Typed(NamedTuple):
    """An integer header value with an explicit wire type: 2 byte, 3 short, 4 int, 5 long."""

    type: int
    value: int


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded event-stream message."""

    headers: dict[str, HeaderValue]
    payload: bytes

    @property
    def message_type(self) -> str | None:
        return self._text(":message-type")

    @property
    def event_type(self) -> str | None:
        return self._text(":event-type")

    @property
    def exception_type(self) -> str | None:
        return self._text(":exception-type")

    def json(self) -> Any:
        """The payload parsed as JSON; ``EventStreamError`` if it is not JSON."""
        try:
            return json.loads(self.payload)
        except ValueError as exc:
            raise EventStreamError(
                f"event-stream payload of {self.event_type or self.message_type!r} frame "
                f"is not valid JSON: {exc}"
            ) from None

    def _text(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None


class Decoder:
    """Incremental decoder: ``feed(bytes) -> [Frame]``, correct for any chunking of the stream.

    Bytes are appended to one ``bytearray``; complete frames are parsed in place through a
    ``memoryview`` and the consumed prefix is dropped once per ``feed``. Any corruption raises
    ``EventStreamError`` naming the failed check and the stream byte offset of the frame; the
    decoder then stays failed.
    """

    def __init__(self, *, max_payload: int = MAX_PAYLOAD, max_headers: int = MAX_HEADERS) -> None:
        self._max_payload = max_payload
        self._max_headers = max_headers
        self._buf = bytearray()
        self._offset = 0  # stream offset of self._buf[0]
        self._failure: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes from the stream; return every frame they complete, in order."""
        if self._failure is not None:
            raise EventStreamError(f"event-stream decoder already failed: {self._failure}")
        self._buf += data
        frames: list[Frame] = []
        pos = 0
        try:
            with memoryview(self._buf) as view:
                while (size := self._frame_size(view, pos)) is not None:
                    frames.append(self._parse(view, pos, size))
                    pos += size
        except EventStreamError as exc:
            self._failure = str(exc)
            raise
        if pos:
            del self._buf[:pos]
            self._offset += pos
        return frames

    def close(self) -> None:
        """Declare the end of the stream; ``EventStreamError`` if a partial frame is buffered."""
        if self._buf:
            raise EventStreamError(
                f"event stream truncated: {len(self._buf)} bytes of an incomplete frame "
                f"at byte offset {self._offset}"
            )

    def _frame_size(self, view: memoryview, pos: int) -> int | None:
        """The checked total length of the frame at ``pos``, or None if it is not all here."""
        available = len(view) - pos
        if available < 12:
            return None
        total, headers_len, prelude_crc = _PRELUDE.unpack_from(view, pos)
        crc = zlib.crc32(view[pos : pos + 8])
        payload_len = total - headers_len - _OVERHEAD
        if crc != prelude_crc:
            problem = f"prelude CRC mismatch: expected 0x{prelude_crc:08x}, computed 0x{crc:08x}"
        elif headers_len > self._max_headers:
            problem = f"headers length {headers_len} exceeds the {self._max_headers} maximum"
        elif payload_len < 0:
            problem = f"total length {total} is too small for {headers_len} header bytes + 16"
        elif payload_len > self._max_payload:
            problem = f"payload length {payload_len} exceeds the {self._max_payload} maximum"
        else:
            return total if available >= total else None
        raise EventStreamError(
            f"event-stream {problem} (frame at byte offset {self._offset + pos})"
        )

    def _parse(self, view: memoryview, pos: int, total: int) -> Frame:
        end = pos + total - 4
        (expected,) = _U32.unpack_from(view, end)
        crc = zlib.crc32(view[pos:end])
        if crc != expected:
            raise EventStreamError(
                f"event-stream message CRC mismatch: expected 0x{expected:08x}, computed "
                f"0x{crc:08x} (frame at byte offset {self._offset + pos})"
            )
        (headers_len,) = _U32.unpack_from(view, pos + 4)
        headers_end = pos + 12 + headers_len
        headers = _parse_headers(view, pos + 12, headers_end, self._offset)
        return Frame(headers, bytes(view[headers_end:end]))


def _parse_headers(view: memoryview, pos: int, end: int, base: int) -> dict[str, HeaderValue]:
    """Parse ``view[pos:end]`` as headers; ``base`` turns buffer positions into stream offsets."""
    headers: dict[str, HeaderValue] = {}
    while pos < end:
        start = pos
        name_len = view[pos]
        pos += 1 + name_len
        if name_len == 0 or pos >= end:
            raise _header_error("truncated or empty header name", base + start)
        name = _utf8(view[start + 1 : pos], base + start)
        try:
            value, pos = _parse_value(view, pos, end)
        except (IndexError, struct.error, ValueError, OverflowError) as exc:
            raise _header_error(
                f"malformed value of header {name!r} ({exc})", base + start
            ) from None
        if name in headers:
            raise _header_error(f"duplicate header {name!r}", base + start)
        headers[name] = value
    return headers


def _parse_value(view: memoryview, pos: int, end: int) -> tuple[HeaderValue, int]:
    """Parse one typed value starting at the type byte; return it and the next position."""
    kind = view[pos]
    pos += 1
    if kind in (0, 1):
        return kind == 0, pos
    if kind in _INT_TYPES:
        fmt = _INT_TYPES[kind]
        return _fixed(fmt, view, pos, end), pos + fmt.size
    if kind in (6, 7):
        length = _fixed(_U16, view, pos, end)
        pos += 2
        if pos + length > end:
            raise ValueError("value runs past the header block")
        raw = view[pos : pos + length]
        return (bytes(raw) if kind == 6 else str(raw, "utf-8")), pos + length
    if kind == 8:
        millis = _fixed(_INT_TYPES[5], view, pos, end)
        return _EPOCH + millis * _MS, pos + 8
    if kind == 9:
        if pos + 16 > end:
            raise ValueError("uuid runs past the header block")
        return uuid.UUID(bytes=bytes(view[pos : pos + 16])), pos + 16
    raise ValueError(f"unknown header type {kind}")


def _fixed(fmt: struct.Struct, view: memoryview, pos: int, end: int) -> int:
    if pos + fmt.size > end:
        raise ValueError("value runs past the header block")
    value: int = fmt.unpack_from(view, pos)[0]
    return value


def _utf8(raw: memoryview, offset: int) -> str:
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError:
        raise _header_error("header name is not UTF-8", offset) from None


def _header_error(problem: str, offset: int) -> EventStreamError:
    return EventStreamError(f"malformed event-stream header at byte offset {offset}: {problem}")


# --- encoding ------------------------------------------------------------------------------


def encode_frame(headers: Mapping[str, HeaderValue | Typed], payload: bytes) -> bytes:
    """Encode one message; headers keep the mapping's order. ``ValueError`` on unencodable input."""
    header_bytes = b"".join([_encode_header(name, value) for name, value in headers.items()])
    if len(header_bytes) > MAX_HEADERS or len(payload) > MAX_PAYLOAD:
        raise ValueError("event-stream headers or payload exceed the 128 KiB / 24 MiB limits")
    prelude = _LENGTHS.pack(len(header_bytes) + len(payload) + _OVERHEAD, len(header_bytes))
    prelude += _U32.pack(zlib.crc32(prelude))
    crc = zlib.crc32(payload, zlib.crc32(header_bytes, zlib.crc32(prelude)))
    return b"".join((prelude, header_bytes, payload, _U32.pack(crc)))


def encode_event(
    event_type: str, payload: Mapping[str, Any] | bytes, *, content_type: str = "application/json"
) -> bytes:
    """An ``event`` message; headers in Bedrock's order; a mapping payload becomes compact JSON."""
    headers = {":event-type": event_type, ":content-type": content_type, ":message-type": "event"}
    return encode_frame(headers, _payload_bytes(payload))


def encode_exception(
    exception_type: str, payload: Mapping[str, Any], *, content_type: str = "application/json"
) -> bytes:
    """An ``exception`` message (modeled in-stream error, e.g. ``throttlingException``)."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": content_type,
        ":message-type": "exception",
    }
    return encode_frame(headers, _payload_bytes(payload))


def encode_chunk(model_chunk: Mapping[str, Any] | bytes, *, padding: str = "") -> bytes:
    """An InvokeModelWithResponseStream ``chunk`` event: ``{"bytes": base64(model JSON)}``.

    ``padding`` adds the ``"p"`` member Bedrock uses to vary frame sizes.
    """
    encoded = base64.b64encode(_payload_bytes(model_chunk)).decode("ascii")
    body: dict[str, str] = {"bytes": encoded, "p": padding} if padding else {"bytes": encoded}
    return encode_event("chunk", body)


def chunk_bytes(frame: Frame) -> bytes:
    """The model-native JSON bytes carried by a ``chunk`` event (base64-decoded)."""
    if frame.message_type != "event" or frame.event_type != "chunk":
        raise EventStreamError(
            f"expected a chunk event, got message type {frame.message_type!r} "
            f"event type {frame.event_type!r}"
        )
    body = frame.json()
    encoded = body.get("bytes") if isinstance(body, dict) else None
    if not isinstance(encoded, str):
        raise EventStreamError('chunk event payload has no "bytes" string member')
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise EventStreamError(f'chunk event "bytes" member is not base64: {exc}') from None


def _payload_bytes(payload: Mapping[str, Any] | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, separators=_JSON_SEPARATORS, ensure_ascii=False).encode("utf-8")


def _encode_header(name: str, value: HeaderValue | Typed) -> bytes:
    raw_name = name.encode("utf-8")
    if not 1 <= len(raw_name) <= 255:
        raise ValueError(f"event-stream header name must be 1-255 UTF-8 bytes: {name!r}")
    return bytes((len(raw_name),)) + raw_name + _encode_value(name, value)


def _encode_value(name: str, value: HeaderValue | Typed) -> bytes:
    """Type byte plus value bytes; plain ``int`` is type 4 when it fits int32, else 5."""
    if isinstance(value, str):
        return _sized(7, value.encode("utf-8"), name)
    if isinstance(value, bool):
        return b"\x00" if value else b"\x01"
    if isinstance(value, Typed):
        return _typed_int(name, value.type, value.value)
    if isinstance(value, int):
        return _typed_int(name, 4 if _INT32[0] <= value <= _INT32[1] else 5, value)
    if isinstance(value, bytes):
        return _sized(6, value, name)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamp header {name!r} must be timezone-aware")
        return b"\x08" + _INT_TYPES[5].pack((value - _EPOCH) // _MS)
    if isinstance(value, uuid.UUID):
        return b"\x09" + value.bytes
    raise ValueError(f"unsupported value type for header {name!r}: {type(value).__name__}")


def _typed_int(name: str, kind: int, value: int) -> bytes:
    fmt = _INT_TYPES.get(kind)
    if fmt is None:
        raise ValueError(f"header {name!r}: integer wire type must be 2-5, got {kind}")
    try:
        return bytes((kind,)) + fmt.pack(value)
    except struct.error:
        raise ValueError(f"header {name!r}: {value} does not fit wire type {kind}") from None


def _sized(kind: int, raw: bytes, name: str) -> bytes:
    if len(raw) > 0xFFFF:
        raise ValueError(f"header {name!r}: value longer than 65535 bytes")
    return bytes((kind,)) + _U16.pack(len(raw)) + raw
