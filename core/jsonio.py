"""Deterministic JSON: the same data always gives the same bytes.

Every JSON file the engine writes goes through :func:`dumps`/:func:`write_json` (sorted keys, two
spaces, a final newline, no NaN). Reading goes through :func:`read_json_file`, which refuses
oversized files and NaN/Infinity literals with an error naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.errors import CandidateError, KfmError

MAX_JSON_BYTES = 4 * 1024 * 1024  # metadata-sized files; evidence bigger than this is a mistake


def dumps(data: Any) -> str:
    """Canonical, human-readable JSON text with a trailing newline."""
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
