"""canonical_json_bytes: RFC 8785 bytes for everything signed or hashed, fast path included."""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785

from core.errors import EncodingError
from core.jsonio import _json_encoder_is_canonical, canonical_json_bytes

EVERY_SCALAR_VALUE = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


class Colour(enum.StrEnum):
    RED = "red"


def test_fast_path_equals_rfc8785_on_every_code_point() -> None:
    """Strings holding every Unicode scalar value encode to exactly rfc8785's bytes."""
    for text in (
        EVERY_SCALAR_VALUE,
        EVERY_SCALAR_VALUE[::-1],
        '\\"\b\f\n\r\t\x00\x1f\x7f\u2028\u2029',
        "é" * 3,
    ):
        data = {"b": [text, None, True, False, 0, -7], "a": {"z": text}}
        assert _json_encoder_is_canonical(data)
        assert canonical_json_bytes(data) == rfc8785.dumps(data)


@pytest.mark.parametrize(
    "data",
    [
        {"\ue000": 1, "\U0001f600": 2, "a": 3},  # UTF-16 order differs from code point order
        {"x": [1.0, 0.1, 1e21, 1e-7, -0.0, 123456789.125]},
        {"n": 2**53 - 1, "m": -(2**53) + 1},
        {"colour": Colour.RED},
        ("tuple", ["nested", {"k": ()}]),
        {},
        [],
        "plain",
    ],
)
def test_every_shape_encodes_as_rfc8785(data: Any) -> None:
    """Keys beyond ASCII, floats, edge integers, enums and tuples give rfc8785's bytes."""
    assert canonical_json_bytes(data) == rfc8785.dumps(data)


def test_non_ascii_keys_sort_by_utf16() -> None:
    """An astral-plane key sorts before U+E000, as RFC 8785's UTF-16 order requires."""
    encoded = canonical_json_bytes({"\ue000": 1, "\U0001f600": 2}).decode("utf-8")
    assert encoded.index("\U0001f600") < encoded.index("\ue000")


def test_key_order_and_spacing_do_not_change_the_bytes() -> None:
    """Equal data built in another key order gives the same bytes, compact and sorted."""
    first = canonical_json_bytes({"b": 1, "a": {"d": "x", "c": None}})
    second = canonical_json_bytes({"a": {"c": None, "d": "x"}, "b": 1})
    assert first == second == b'{"a":{"c":null,"d":"x"},"b":1}'


def test_decision_shaped_data_takes_the_fast_path() -> None:
    """A statement-shaped value (ASCII keys, strings, nulls, lists) is recognized as fast."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": "a" * 64}}],
        "predicate": {"reason": "ça va", "channel": None, "evidence": []},
    }
    assert _json_encoder_is_canonical(statement)
    assert not _json_encoder_is_canonical({"x": 1.5})
    assert not _json_encoder_is_canonical({"é": "x"})
    assert not _json_encoder_is_canonical({"x": 2**53})


@pytest.mark.parametrize(
    ("data", "found"),
    [
        ({"x": math.nan}, "nan"),
        ({"x": math.inf}, "inf"),
        ({"x": 2**53}, "safe integer"),
        ({"x": "lone \ud800 surrogate"}, "UTF-8"),
        ({"lone \ud800": "key"}, "surrogate"),
        ({1: "int key"}, "keys must be strings"),
        ({"when": datetime(2026, 1, 1, tzinfo=UTC)}, "unsupported type"),
    ],
)
def test_what_rfc8785_cannot_hold_is_refused(data: Any, found: str) -> None:
    """NaN, infinities, big integers, lone surrogates, non-string keys and objects are refused."""
    with pytest.raises(EncodingError, match="canonical JSON") as caught:
        canonical_json_bytes(data)
    assert found in str(caught.value.found)


def test_cyclic_data_is_refused() -> None:
    """A list that contains itself is refused with an error, not an endless loop."""
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(EncodingError):
        canonical_json_bytes(cyclic)
