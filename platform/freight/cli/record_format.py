"""Printing records the way kcat does: a `-f/--format` string, and bytes shown as repr, hex or base64.

`freight consume -f` takes kcat's tokens (`%t %p %o %k %s %S %K %T %h %%`) and escapes (`\\n \\t \\r \\\\`);
the same formatter prints decoded Freight objects and raw records (`--raw`), so one format string works
for both.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from freight.errors import ConfigError

Encoding = Literal["repr", "hex", "base64", "text"]
ENCODINGS: tuple[str, ...] = get_args(Encoding)

TOKENS = {
    "t": "topic",
    "p": "partition",
    "o": "offset",
    "k": "key",
    "s": "value",
    "S": "value size",
    "K": "key size",
    "T": "timestamp (ms)",
    "h": "headers (name=value, comma-separated)",
    "%": "a literal %",
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
_PART = re.compile(r"%(.)|\\(.)|([^%\\]+)|(%|\\)$", re.DOTALL)


@dataclass(frozen=True)
class Row:
    """What a format string can show of one record (a Kafka record, or a decoded Freight object)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = field(default_factory=tuple)


def encode(data: bytes | None, encoding: Encoding) -> str:
    """`data` as text: Python's bytes repr, hex, base64 or UTF-8 (undecodable bytes replaced).

    Args:
        data: the bytes (None for a missing key or value: printed as `null`).
        encoding: one of `ENCODINGS`.

    Returns:
        The text.
    """
    if data is None:
        return "null"
    if encoding == "hex":
        return data.hex()
    if encoding == "base64":
        return base64.b64encode(data).decode("ascii")
    if encoding == "text":
        return data.decode("utf-8", errors="replace")
    return repr(data)


def check_encoding(text: str) -> Encoding:
    """The encoding named by `--raw-encoding`; an unknown one is a ConfigError (exit 2)."""
    if text not in ENCODINGS:
        raise ConfigError(f"--raw-encoding must be one of {', '.join(ENCODINGS)}, not {text!r}")
    return text  # type: ignore[return-value]


class RecordFormat:
    """A compiled kcat-style format string.

    Args:
        spec: the format, e.g. `'%t %p %o %k %s\\n'`. A newline is added at the end unless the format
            already ends with one, so `-f '%o %s'` prints one line per record.
        encoding: how key, value and header values are written; None writes them as they are (bytes).

    Raises:
        ConfigError: an unknown `%` token or escape (the message lists the known ones).
    """

    def __init__(self, spec: str, encoding: Encoding | None = None) -> None:
        self.encoding = encoding
        self._parts: list[tuple[str, str]] = []  # ("lit", text) or ("tok", letter)
        for m in _PART.finditer(spec):
            tok, escape, literal, dangling = m.groups()
            if tok is not None:
                if tok not in TOKENS:
                    known = ", ".join(f"%{k} ({v})" for k, v in TOKENS.items())
                    raise ConfigError(f"--format: unknown token %{tok} in {spec!r}; known: {known}")
                self._parts.append(("lit", "%") if tok == "%" else ("tok", tok))
            elif escape is not None:
                if escape not in _ESCAPES:
                    raise ConfigError(
                        f"--format: unknown escape \\{escape} in {spec!r}; known: \\n, \\t, \\r, \\\\"
                    )
                self._parts.append(("lit", _ESCAPES[escape]))
            elif literal is not None:
                self._parts.append(("lit", literal))
            elif dangling is not None:
                raise ConfigError(
                    f"--format ends with a lone {dangling!r}: write %% or \\\\ for the character"
                )
        last = self._parts[-1] if self._parts else ("lit", "")
        if not (last[0] == "lit" and last[1].endswith("\n")):
            self._parts.append(("lit", "\n"))

    def _bytes(self, data: bytes | None) -> bytes:
        if self.encoding is None:
            return b"" if data is None else data
        return encode(data, self.encoding).encode()

    def render(self, row: Row) -> bytes:
        """The formatted record, as bytes (a value may be binary)."""
        out: list[bytes] = []
        for kind, text in self._parts:
            if kind == "lit":
                out.append(text.encode())
            elif text == "t":
                out.append(row.topic.encode())
            elif text == "p":
                out.append(str(row.partition).encode())
            elif text == "o":
                out.append(str(row.offset).encode())
            elif text == "T":
                out.append(str(row.timestamp).encode())
            elif text == "k":
                out.append(self._bytes(row.key))
            elif text == "s":
                out.append(self._bytes(row.value))
            elif text == "K":
                out.append(str(-1 if row.key is None else len(row.key)).encode())
            elif text == "S":
                out.append(str(-1 if row.value is None else len(row.value)).encode())
            elif text == "h":
                out.append(b",".join(name.encode() + b"=" + self._bytes(v) for name, v in row.headers))
        return b"".join(out)


def row_dict(row: Row, encoding: Encoding) -> dict[str, object]:
    """A record as a JSON-ready dict, bytes encoded with `encoding` (key and value None when absent)."""
    return {
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
        "timestamp": row.timestamp,
        "key": None if row.key is None else encode(row.key, encoding),
        "headers": [[name, None if v is None else encode(v, encoding)] for name, v in row.headers],
        "value": None if row.value is None else encode(row.value, encoding),
        "value_size": None if row.value is None else len(row.value),
        "encoding": encoding,
    }


def metadata_headers(metadata: Mapping[str, str]) -> list[tuple[str, bytes | None]]:
    """A Freight object's metadata as (name, value) pairs, shown by `%h` for decoded objects."""
    return [(k, str(v).encode()) for k, v in sorted(metadata.items())]
