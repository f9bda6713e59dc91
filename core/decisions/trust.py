"""What this client trusts, kept outside every workspace: root key pins and the ledger witness.

Everything a workspace holds can be rewritten by whoever can write its files, including
``keys/root.pub``, the key the roster's signature is checked with. So the root key is trusted
only when its fingerprint (:func:`core.signing.keys.key_fingerprint`) equals a **pin** the
operator set outside the workspace:

1. ``KFM_ROOT_FINGERPRINT`` in the environment (servers, CI), for any workspace; else
2. the user's trust file ``<kfm home>/trust.toml``::

       [workspaces."/absolute/path/of/the/workspace"]
       root = "<64 hex digits>"
       pinned_at = "2026-11-01T12:00:00Z"

``<kfm home>`` is ``KFM_HOME``, else ``$XDG_CONFIG_HOME/kfm``, else ``~/.config/kfm``
(:func:`trust_home`). ``kfm init`` and ``kfm demo`` pin the root key they create;
``kfm trust pin FINGERPRINT`` pins one received from its holder. No pin is an error that shows
the fingerprint found and the command to pin it.

The **witness** ``<kfm home>/witness/<root fingerprint>.json`` remembers the newest ledger head
(seq and entry hash), checkpoint seq and roster serial this client verified under that root. A
later read refuses a ledger shorter than it, another hash at that seq, or a lower roster serial
(:mod:`core.decisions.anchors` does the checks): like a Certificate Transparency or Go checksum
database client, a client that has seen a state cannot be shown an earlier or forked one.

Core never reads the environment: the command line and the dashboard build a
:class:`TrustStore` with :meth:`TrustStore.from_environment` and pass it in.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tomllib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import TrustError

HOME_ENV = "KFM_HOME"
ROOT_FINGERPRINT_ENV = "KFM_ROOT_FINGERPRINT"
XDG_CONFIG_ENV = "XDG_CONFIG_HOME"
TRUST_FILE = "trust.toml"
WITNESS_DIR = "witness"
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_HEADER = (
    "# Root key pins of KFM workspaces: kfm refuses a workspace whose keys/root.pub has another\n"
    "# fingerprint. Written by `kfm init`, `kfm demo` and `kfm trust pin`.\n"
)


def trust_home(env: Mapping[str, str], user_home: Path | None) -> Path:
    """``KFM_HOME``, else ``$XDG_CONFIG_HOME/kfm`` (when absolute), else ``~/.config/kfm``."""
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV]).expanduser().absolute()
    xdg = env.get(XDG_CONFIG_ENV)
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative path is ignored
        return Path(xdg) / "kfm"
    if user_home is None:
        raise TrustError(
            "no folder for this client's trust settings",
            field=HOME_ENV,
            expected=f"{HOME_ENV}, {XDG_CONFIG_ENV} or a home directory",
            found="none of them",
            hint=f"set {HOME_ENV} to a folder only you can write",
        )
    return user_home / ".config" / "kfm"


def check_fingerprint(value: str, *, field: str = "fingerprint") -> str:
    """``value`` as a root key fingerprint: 64 hex digits (lower-cased); else a TrustError."""
    text = value.strip().lower()
    if not _FINGERPRINT.fullmatch(text):
        raise TrustError(
            "not a key fingerprint",
            field=field,
            expected="64 hex digits (SHA-256 of the public key, as `kfm trust show` prints)",
            found=value,
        )
    return text


@dataclass(frozen=True)
class RootPin:
    """The fingerprint a workspace's root key must have, and where the pin was read."""

    fingerprint: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {"fingerprint": self.fingerprint, "source": self.source}


class Witness(BaseModel):
    """The newest state this client verified under one root key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: str = Field(description="Fingerprint of the root key the state was verified under")
    seq: int = Field(ge=0, description="Ledger head seq (0: empty ledger)")
    entry_hash: str = Field(description="entry_hash at seq (GENESIS for an empty ledger)")
    checkpoint_seq: int = Field(0, ge=0, description="Newest checkpoint seen (0: none)")
    roster_serial: int = Field(1, ge=1)
    updated_at: datetime

    @field_validator("root", "entry_hash")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _FINGERPRINT.fullmatch(value):
            raise ValueError(f"must be 64 lowercase hex digits, got {value!r}")
        return value

    def advanced(self, later: Witness) -> Witness:
        """The witness after ``later`` was verified: nothing it remembers ever goes back."""
        newest = later if later.seq >= self.seq else self
        return Witness(
            root=self.root,
            seq=newest.seq,
            entry_hash=newest.entry_hash,
            checkpoint_seq=max(self.checkpoint_seq, later.checkpoint_seq),
            roster_serial=max(self.roster_serial, later.roster_serial),
            updated_at=later.updated_at,
        )


class TrustStore:
    """Pins and witnesses under one folder (``<kfm home>``); see the module docstring."""

    def __init__(self, home: Path, *, root_fingerprint: str | None = None) -> None:
        self.home = Path(home)
        self.env_fingerprint = (
            None
            if root_fingerprint is None
            else check_fingerprint(root_fingerprint, field=ROOT_FINGERPRINT_ENV)
        )

    @classmethod
    def from_environment(cls, env: Mapping[str, str], user_home: Path | None) -> TrustStore:
        """The store the operator configured: ``KFM_HOME``/XDG/home and ``KFM_ROOT_FINGERPRINT``."""
        return cls(
            trust_home(env, user_home), root_fingerprint=env.get(ROOT_FINGERPRINT_ENV) or None
        )

    @property
    def trust_file(self) -> Path:
        return self.home / TRUST_FILE

    # ------------------------------------------------------------------ pins
    def pins(self) -> dict[str, str]:
        """Workspace path → pinned fingerprint, as in the trust file."""
        path = self.trust_file
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise TrustError(
                "the trust file cannot be read", file=str(path), found=str(error)
            ) from error
        workspaces = raw.get("workspaces", {})
        if not isinstance(workspaces, dict):
            raise TrustError(
                "malformed trust file", file=str(path), field="workspaces", expected="a table"
            )
        out = {}
        for where, table in workspaces.items():
            root = table.get("root") if isinstance(table, dict) else None
            if not isinstance(root, str) or not _FINGERPRINT.fullmatch(root):
                raise TrustError(
                    "malformed pin in the trust file",
                    file=str(path),
                    field=f'workspaces."{where}".root',
                    expected="64 lowercase hex digits",
                    found=root,
                )
            out[where] = root
        return out

    def pin_for(self, workspace: Path) -> RootPin | None:
        """The pin that applies to ``workspace``: the environment's, else the trust file's."""
        if self.env_fingerprint is not None:
            return RootPin(self.env_fingerprint, f"${ROOT_FINGERPRINT_ENV}")
        fingerprint = self.pins().get(_key(workspace))
        return None if fingerprint is None else RootPin(fingerprint, str(self.trust_file))

    def require_root(self, workspace: Path, found: str, *, key_file: str) -> RootPin:
        """The pin of ``workspace`` if the root key there (fingerprint ``found``) matches it."""
        pin = self.pin_for(workspace)
        if pin is None:
            raise TrustError(
                "the workspace's root key is not pinned: nothing outside the workspace says "
                "which root key to trust",
                file=key_file,
                field="fingerprint",
                expected=f"a pin in ${ROOT_FINGERPRINT_ENV} or in {self.trust_file}",
                found=found,
                hint=f"check this fingerprint with the governance root key's holder, then run "
                f"`kfm trust pin {found} --workspace {_key(workspace)}`",
            )
        if pin.fingerprint != found:
            raise TrustError(
                "the workspace's root public key is not the pinned one: keys/root.pub was "
                "replaced, or the governance root key changed",
                file=key_file,
                field="fingerprint",
                expected=f"{pin.fingerprint} (pinned in {pin.source})",
                found=found,
                hint="if the root key was replaced on purpose, pin the new fingerprint with "
                f"`kfm trust pin {found} --workspace {_key(workspace)}` after checking it "
                "with its holder",
            )
        return pin

    def pin(self, workspace: Path, fingerprint: str) -> str | None:
        """Pin ``fingerprint`` for ``workspace`` in the trust file; returns the pin it replaced."""
        fingerprint = check_fingerprint(fingerprint)
        with self._locked():
            pins = self.pins()
            previous = pins.get(_key(workspace))
            pins[_key(workspace)] = fingerprint
            self._write_pins(pins)
        return previous

    def forget(self, workspace: Path) -> None:
        """Remove ``workspace``'s pin from the trust file (nothing when there is none)."""
        with self._locked():
            pins = self.pins()
            if pins.pop(_key(workspace), None) is not None:
                self._write_pins(pins)

    def move_pin(self, source: Path, target: Path) -> None:
        """Pin for ``target`` what the trust file pins for ``source`` (a workspace renamed)."""
        with self._locked():
            pins = self.pins()
            fingerprint = pins.pop(_key(source), None)
            if fingerprint is None:
                raise TrustError(
                    "no pin to move", file=str(self.trust_file), field=_key(source), found="none"
                )
            pins[_key(target)] = fingerprint
            self._write_pins(pins)

    def _write_pins(self, pins: Mapping[str, str]) -> None:
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = [_HEADER]
        for where in sorted(pins):
            lines.append(f"\n[workspaces.{_toml_string(where)}]\n")
            lines.append(f'root = "{pins[where]}"\npinned_at = "{when}"\n')
        _replace(self.trust_file, "".join(lines).encode("utf-8"))

    # ------------------------------------------------------------------ witness
    def witness_path(self, root_fingerprint: str) -> Path:
        return self.home / WITNESS_DIR / f"{check_fingerprint(root_fingerprint)}.json"

    def witness(self, root_fingerprint: str) -> Witness | None:
        """What this client last verified under ``root_fingerprint``, if anything."""
        path = self.witness_path(root_fingerprint)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            witness = Witness.model_validate(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ValidationError) as error:
            raise TrustError(
                "this client's witness file is unreadable",
                file=str(path),
                expected="a witness written by kfm",
                found=str(error).splitlines()[0],
                hint="delete it to start over (this client then forgets what it saw)",
            ) from error
        if witness.root != root_fingerprint:
            raise TrustError(
                "witness file is for another root key",
                file=str(path),
                field="root",
                expected=root_fingerprint,
                found=witness.root,
            )
        return witness

    def record_witness(self, seen: Witness) -> Witness:
        """Remember ``seen`` (merged with what is remembered: it never goes back); returns it."""
        with self._locked():
            before = self.witness(seen.root)
            after = seen if before is None else before.advanced(seen)
            text = json.dumps(after.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
            _replace(self.witness_path(seen.root), text.encode("utf-8"))
        return after

    # ------------------------------------------------------------------ files
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time on this machine (several kfm processes share the home)."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            handle = open(self.home / ".lock", "a+b")  # noqa: SIM115 - closed below
        except OSError as error:
            raise TrustError(
                "cannot write this client's trust folder",
                file=str(self.home),
                found=error.strerror or type(error).__name__,
                hint=f"set {HOME_ENV} to a folder you can write",
            ) from error
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _key(workspace: Path) -> str:
    """How a workspace is named in the trust file: its absolute, resolved path."""
    return str(Path(workspace).expanduser().resolve())


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes for quote, backslash and controls are TOML's too)."""
    return json.dumps(value, ensure_ascii=False)


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` atomically (a reader sees the old or the new file, never half of one)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as error:
        raise TrustError(
            "cannot write this client's trust file",
            file=str(path),
            found=error.strerror or type(error).__name__,
        ) from error
