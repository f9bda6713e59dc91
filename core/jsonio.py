"""Deterministic JSON: the same data always gives the same bytes.

Every JSON file the engine writes goes through :func:`dumps`/:func:`write_json` (sorted keys, two
spaces, a final newline, no NaN). Reading goes through :func:`read_json_file`, which refuses
oversized files and NaN/Infinity literals with an error naming the file.

Everything the engine signs or hashes as JSON (decision statements and envelopes, the roster, the
ledger's chain hash, the registry record digest, the file manifest digest) is encoded by one
function, :func:`canonical_json_bytes`: RFC 8785 (JSON Canonicalization Scheme) bytes, so any
JCS implementation can recompute a signed payload or a digest.

Speed: the ``rfc8785`` package is pure Python (~5x slower than the C ``json`` encoder on a
decision statement, which would put ledger verification past its 2x-of-raw-ECDSA budget). For
data made only of ASCII object keys, strings, ``null``, booleans, integers in RFC 8785's domain,
lists and objects, ``json.dumps(sort_keys=True, ensure_ascii=False, compact)`` writes exactly
the RFC 8785 bytes: same escapes (lowercase hex for control characters), raw UTF-8 for the
rest, and ASCII keys sort the same by code point as by UTF-16 unit. :func:`canonical_json_bytes`
checks that shape and then uses the C encoder; anything else (floats, non-ASCII keys, a lone
surrogate) goes to ``rfc8785``. Tests compare both on every Unicode code point.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import rfc8785

from core.errors import CandidateError, EncodingError, KfmError

MAX_JSON_BYTES = 4 * 1024 * 1024  # metadata-sized files; evidence bigger than this is a mistake

_JCS_INT_MAX = 2**53 - 1
"""RFC 8785 numbers are IEEE 754 doubles: integers beyond +-(2**53 - 1) are not exact."""

_compact_sorted = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


def _json_encoder_is_canonical(data: Any) -> bool:
    """Whether the C ``json`` encoder writes RFC 8785 bytes for ``data`` (see module docstring)."""
    stack = [data]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        if kind is dict:
            for key in value:
                if type(key) is not str or not key.isascii():
                    return False
            stack.extend(value.values())
        elif kind is list or kind is tuple:
            stack.extend(value)
        elif kind is int:
            if not -_JCS_INT_MAX <= value <= _JCS_INT_MAX:
                return False
        else:  # floats, str/int subclasses (enums), other types: leave them to rfc8785
            return False
    return True


def canonical_json_bytes(data: Any) -> bytes:
    """RFC 8785 canonical JSON of ``data``: the one encoding of everything signed or hashed.

    Refuses what RFC 8785 cannot represent (NaN, infinities, integers beyond 2**53 - 1, strings
    that are not valid Unicode, non-string keys, other types) with :class:`EncodingError`.
    """
    try:
        # The C encoder runs first: it refuses cycles, so the shape check below always ends.
        text = _compact_sorted(data)
        if _json_encoder_is_canonical(data):
            return text.encode("utf-8")
    except (TypeError, ValueError):
        pass  # other types, NaN, a cycle or a lone surrogate: rfc8785 decides below
    try:
        return rfc8785.dumps(data)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, RecursionError) as error:
        raise EncodingError(
            "data cannot be written as canonical JSON (RFC 8785)",
            expected="strings of Unicode scalar values, finite numbers within 2**53, string keys",
            found=str(error),
        ) from error


def dumps(data: Any) -> str:
    """Deterministic, human-readable JSON text with a trailing newline (for files, not digests)."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: Path, data: Any) -> None:
    """Write data as canonical JSON, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(data), encoding="utf-8")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not valid JSON")


def read_json_file(
    path: Path,
    *,
    display: str | None = None,
    max_bytes: int = MAX_JSON_BYTES,
    error: type[KfmError] = CandidateError,
) -> Any:
    """Parse a JSON file, refusing files over ``max_bytes``, bad UTF-8, bad syntax and NaN."""
    name = display or str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise error("required file is missing", file=name) from exc
    if size > max_bytes:
        raise error(
            "file is too large",
            file=name,
            expected=f"at most {max_bytes} bytes",
            found=f"{size} bytes",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error("not UTF-8 text", file=name, found=str(exc)) from exc
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise error(f"malformed JSON: {exc}", file=name) from exc
