"""Shared output helpers for CLI commands: rich consoles and JSON printing.

Text printed by the CLI often holds what a user typed or a file held (versions, reasons, roster
names, error diagnostics). Rich would read ``[...]`` in it as markup (``1.0.0[/]`` raises
``MarkupError``; ``reviewers[dana]`` loses ``[dana]``) and ``:name:`` as an emoji, so the shared
consoles interpret neither: every plain string is printed as it is. Colour comes only from the
program's own templates, through :func:`styled`, which inserts each value as plain text.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.text import Span, Text

console = Console(highlight=False, markup=False, emoji=False)
err_console = Console(stderr=True, highlight=False, markup=False, emoji=False)
_SLOT = "\x00"  # one placeholder character: never in a template's own text


def styled(template: str, *values: object) -> Text:
    """``template`` (the program's own Rich markup, ``{}`` placeholders) with ``values`` as text.

    ``styled("[red]FAIL[/] {}", problem)`` colours ``FAIL`` and prints ``problem`` exactly,
    whatever brackets, backslashes or colons it holds; a value takes the template's style at
    its place. Values are never parsed: the template is, with each ``{}`` as one placeholder
    character, which is then replaced by the value's text.
    """
    base = Text.from_markup(template.replace("{}", _SLOT), emoji=False)
    slots = [i for i, char in enumerate(base.plain) if char == _SLOT]
    if len(slots) != len(values):
        raise ValueError(f"template has {len(slots)} placeholders for {len(values)} values")
    cuts = sorted({*slots, *(i + 1 for i in slots)})
    pieces = base.divide(cuts)
    out = Text(end=base.end)
    values_left = iter(values)
    for piece in pieces:
        if piece.plain == _SLOT:
            value = str(next(values_left))
            piece = Text(
                value,
                style=piece.style,
                spans=[Span(0, len(value), span.style) for span in piece.spans],
            )
        out.append_text(piece)
    return out


def print_json(data: Any) -> None:
    """Print data as stable, indented JSON on stdout (for ``--json``)."""
    print(json.dumps(data, indent=2, sort_keys=True, default=str))
