"""One error base for the whole engine.

Every error the engine raises on purpose is a :class:`KfmError`. It names what was being
read (``file``), which part of it (``field``), what was expected and what was found, and may
carry advice for the user. The CLI catches the base once and prints :meth:`KfmError.diagnostics`;
nothing else ever reaches the user as a raw traceback.
"""

from __future__ import annotations

from typing import Any


class KfmError(Exception):
    """Base of every error the engine raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        expected: Any = None,
        found: Any = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.field = field
        self.expected = expected
        self.found = found
        self.hint = hint
        super().__init__(self.diagnostics())

    def diagnostics(self) -> str:
        """One readable paragraph: where, what, expected vs found, advice."""
        where = ""
        if self.file and self.field:
            where = f"{self.file}: field '{self.field}': "
        elif self.file:
            where = f"{self.file}: "
        elif self.field:
            where = f"field '{self.field}': "
        text = f"{where}{self.message}"
        if self.expected is not None or self.found is not None:
            text += f" (expected {_show(self.expected)}, found {_show(self.found)})"
        if self.hint:
            text += f". {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data, for ``--json`` output and reports."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "file": self.file,
            "field": self.field,
            "expected": None if self.expected is None else _show(self.expected),
            "found": None if self.found is None else _show(self.found),
            "hint": self.hint,
        }


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:197] + "..."
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


class EncodingError(KfmError):
    """Data cannot be written in the form it must take (canonical JSON for a signature)."""


class CandidateError(KfmError):
    """A candidate directory is missing, malformed or inconsistent."""


class PolicyError(KfmError):
    """A policy file is malformed, empty or names unknown gates or keys."""


class GateError(KfmError):
    """A gate could not be evaluated (it is reported as status ``error``)."""


class InferenceError(KfmError):
    """The model could not be run on the given data."""


class SigningError(KfmError):
    """A signature could not be made (key, passphrase, network for keyless)."""


class VerificationError(KfmError):
    """A digest, manifest, signature or envelope did not verify."""


class KeyError_(KfmError):
    """A key file is missing, malformed or locked with another passphrase."""


class RosterError(KfmError):
    """The roster is unsigned, tampered, or does not grant what is asked."""


class AuthorizationError(KfmError):
    """An actor may not take this decision (role, validity, self-approval...)."""


class DescribeError(KfmError):
    """The STAC item or PROV document could not be built or is inconsistent."""


class SovereigntyError(KfmError):
    """Regions are malformed or a screening rule could not be applied."""


class RegistryError(KfmError):
    """The registry refused a write or holds an inconsistent version."""


class LedgerError(KfmError):
    """The ledger could not be read or appended, or its chain is broken."""


class WorkspaceError(KfmError):
    """The workspace is missing or its kfm.toml is malformed."""


class TrustError(KfmError):
    """The root key is not the pinned one, or a ledger or roster went back behind what was seen."""
