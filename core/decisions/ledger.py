"""The decision ledger: an append-only, hash-chained log of signed decision records.

Each entry holds one DSSE envelope (:mod:`core.decisions.records`), its position ``seq`` (1, 2, ...),
the hash of the previous entry (``prev_hash``; the first entry links to :data:`GENESIS`), the time
the ledger recorded it, and its own ``entry_hash`` — SHA-256 over
``[seq, prev_hash, recorded_at, envelope_sha256]`` (see :func:`entry_hash`). Editing, inserting or deleting any row breaks
the chain from that row on; :func:`core.decisions.verify.verify_ledger` finds the first such row.

For display and queries, each row also carries the record's fields (kind, actor, role, version,
time, target version) read from the envelope's payload when it was appended; nothing decides on
them: the verified replay reads the signed payload and refuses a row whose columns differ.
``recorded_at`` never goes backwards: an entry is recorded no earlier than its predecessor.

Appends are serialized so concurrent writers never fork the chain: SQLite takes its write lock
first (``BEGIN IMMEDIATE``), PostgreSQL a transaction-scoped advisory lock, and both have unique
constraints on ``seq`` and ``prev_hash`` as a last line of defence (a lost race is retried).
:meth:`Ledger.transact` runs a caller's decision function *inside* that lock, with the entries so
far: this is how the engine appends an approval and the promotion it triggers atomically, so two
reviewers approving at once cannot promote twice.

Implementations: :class:`SQLiteLedger` (default), :class:`PostgresLedger` (multi-user),
:class:`core.testing.MemoryLedger`. :func:`open_ledger` picks one from a location.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from securesystemslib.dsse import Envelope

from core.decisions.records import GENESIS, envelope_to_dict, read_statement
from core.errors import KfmError, LedgerError
from core.jsonio import canonical_json_bytes

Decide = Callable[[Sequence["LedgerEntry"]], Sequence[Envelope | Mapping[str, Any]]]
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def format_time(value: datetime) -> str:
    """UTC ISO 8601 with microseconds and a ``Z``: the ledger's one time format."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    """Inverse of :func:`format_time` (accepts any ISO 8601 with a zone)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the ledger."""

    seq: int
    prev_hash: str
    entry_hash: str
    recorded_at: str
    envelope: str  # RFC 8785 canonical JSON of the DSSE envelope
    kind: str
    actor: str
    role: str
    version: str
    time: str
    target_version: str | None

    def envelope_dict(self) -> dict[str, Any]:
        """The DSSE envelope as JSON data."""
        data: dict[str, Any] = json.loads(self.envelope)
        return data

    @property
    def recorded(self) -> datetime:
        return parse_time(self.recorded_at)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` output."""
        return {
            "seq": self.seq,
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
            "recorded_at": self.recorded_at,
            "kind": self.kind,
            "actor": self.actor,
            "role": self.role,
            "version": self.version,
            "time": self.time,
            "target_version": self.target_version,
        }


def entry_hash(seq: int, prev_hash: str, recorded_at: str, envelope_sha256: str) -> str:
    """The hash that chains an entry to its predecessor.

    SHA-256 over the RFC 8785 array ``[seq, prev_hash, recorded_at, envelope_sha256]`` (an int
    and ASCII strings: the same bytes the compact ``json.dumps`` of earlier releases wrote, so
    stored rows keep verifying).
    """
    body = canonical_json_bytes([seq, prev_hash, recorded_at, envelope_sha256])
    return hashlib.sha256(body).hexdigest()


def envelope_sha256(stored: str) -> str:
    """Digest of a stored envelope: SHA-256 of its RFC 8785 text, exactly as stored.

    Equal to :func:`core.decisions.records.envelope_digest` of the envelope for every row the ledger
    wrote; any edit to the stored bytes changes it.
    """
    return hashlib.sha256(stored.encode("utf-8")).hexdigest()


def make_entry(
    seq: int, prev_hash: str, recorded_at: datetime, envelope: Envelope | Mapping[str, Any]
) -> LedgerEntry:
    """Build the next entry for ``envelope`` (its payload must parse as a decision record)."""
    data = envelope_to_dict(envelope) if isinstance(envelope, Envelope) else dict(envelope)
    try:
        record = read_statement(data)
    except KfmError as error:
        raise LedgerError(
            "refusing to append: not a decision record",
            field=error.field,
            expected=error.expected,
            found=error.found,
        ) from error
    when = format_time(recorded_at)
    stored = canonical_json_bytes(data).decode("utf-8")
    return LedgerEntry(
        seq=seq,
        prev_hash=prev_hash,
        entry_hash=entry_hash(seq, prev_hash, when, envelope_sha256(stored)),
        recorded_at=when,
        envelope=stored,
        kind=record.kind,
        actor=record.actor,
        role=record.role,
        version=record.version,
        time=format_time(record.time),
        target_version=record.target_version,
    )


def chain(
    head: LedgerEntry | None,
    envelopes: Sequence[Envelope | Mapping[str, Any]],
    recorded_at: datetime,
) -> list[LedgerEntry]:
    """The entries that append ``envelopes`` after ``head`` (recorded no earlier than it)."""
    seq = head.seq if head else 0
    prev = head.entry_hash if head else GENESIS
    if head is not None:
        recorded_at = max(recorded_at, head.recorded)
    out = []
    for envelope in envelopes:
        seq += 1
        entry = make_entry(seq, prev, recorded_at, envelope)
        out.append(entry)
        prev = entry.entry_hash
    return out


@runtime_checkable
class Ledger(Protocol):
    """Append-only, hash-chained decision records."""

    location: str

    def entries(self) -> list[LedgerEntry]:
        """Every entry in order."""
        ...

    def read_from(self, seq: int) -> list[LedgerEntry]:
        """The entries from ``seq`` on, in order (a verified reader reads only what is new)."""
        ...

    def transact(self, decide: Decide) -> list[LedgerEntry]:
        """Under the append lock: call ``decide(entries)`` and append what it returns."""
        ...

    def append(self, envelope: Envelope | Mapping[str, Any]) -> LedgerEntry:
        """Append one envelope."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


COLUMNS = (
    "seq",
    "prev_hash",
    "entry_hash",
    "recorded_at",
    "envelope",
    "kind",
    "actor",
    "role",
    "version",
    "time",
    "target_version",
)


class _SqlLedger:
    """Shared logic of the SQL ledgers: cache, transact, retry."""

    location: str
    _cache: list[LedgerEntry]
    _clock: Clock
    _retries = 20

    _table: str  # the (qualified) table name
    _mark: str  # the driver's parameter placeholder

    def _fetch_after(self, cursor: Any, seq: int) -> list[LedgerEntry]:
        cursor.execute(
            f"SELECT {', '.join(COLUMNS)} FROM {self._table} WHERE seq > {self._mark} ORDER BY seq",
            (seq,),
        )
        return [_row_entry(row) for row in cursor.fetchall()]

    def _insert(self, cursor: Any, entries: Sequence[LedgerEntry]) -> None:
        marks = ", ".join(self._mark for _ in COLUMNS)
        cursor.executemany(
            f"INSERT INTO {self._table} ({', '.join(COLUMNS)}) VALUES ({marks})",
            [tuple(getattr(e, c) for c in COLUMNS) for e in entries],
        )

    @contextmanager
    def _locked(self) -> Iterator[Any]:  # yields a cursor inside a locked transaction
        raise NotImplementedError
        yield

    def _is_conflict(self, error: BaseException) -> bool:
        raise NotImplementedError

    def _refresh(self, cursor: Any) -> list[LedgerEntry]:
        after = self._cache[-1].seq if self._cache else 0
        self._cache = self._cache + self._fetch_after(cursor, after)
        return list(self._cache)

    def entries(self) -> list[LedgerEntry]:
        with self._reading() as cursor:
            return self._fetch_after(cursor, 0)  # always re-read: verification relies on it

    def read_from(self, seq: int) -> list[LedgerEntry]:
        with self._reading() as cursor:
            return self._fetch_after(cursor, seq - 1)

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        with self._locked() as cursor:
            yield cursor

    def transact(self, decide: Decide) -> list[LedgerEntry]:
        for attempt in range(self._retries):
            try:
                with self._locked() as cursor:
                    current = self._refresh(cursor)
                    envelopes = decide(current)
                    if not envelopes:
                        return []
                    head = current[-1] if current else None
                    new = chain(head, envelopes, self._clock())
                    self._insert(cursor, new)
                self._cache = current + new
                return new
            except Exception as error:
                if isinstance(error, KfmError) or not self._is_conflict(error):
                    raise
                self._cache = []  # someone else appended: re-read everything
                time.sleep(0.005 * (attempt + 1))
        raise LedgerError(
            "could not append after repeated conflicts",
            file=self.location,
            expected=f"an append within {self._retries} attempts",
            found="conflicts every time",
        )

    def append(self, envelope: Envelope | Mapping[str, Any]) -> LedgerEntry:
        (entry,) = self.transact(lambda _entries: [envelope])
        return entry


def _row_entry(row: Sequence[Any]) -> LedgerEntry:
    return LedgerEntry(*row)


class SQLiteLedger(_SqlLedger):
    """The default ledger: one SQLite file (WAL mode; writers serialized by BEGIN IMMEDIATE)."""

    _table = "ledger"
    _mark = "?"

    def __init__(self, path: Path | str, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._clock = clock or _now
        self._cache = []
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS ledger ("
                " seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL UNIQUE,"
                " entry_hash TEXT NOT NULL UNIQUE, recorded_at TEXT NOT NULL,"
                " envelope TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,"
                " role TEXT NOT NULL, version TEXT NOT NULL, time TEXT NOT NULL,"
                " target_version TEXT)"
            )
        except sqlite3.Error as error:
            raise LedgerError(
                "cannot open the SQLite ledger", file=self.location, found=str(error)
            ) from error

    @contextmanager
    def _locked(self) -> Iterator[Any]:
        with self._lock:
            cursor = self._conn.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                raise LedgerError(
                    "cannot lock the SQLite ledger", file=self.location, found=str(error)
                ) from error
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            else:
                try:
                    cursor.execute("COMMIT")
                except sqlite3.Error as error:
                    raise LedgerError(
                        "cannot commit to the SQLite ledger", file=self.location, found=str(error)
                    ) from error

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        with self._lock:
            try:
                yield self._conn.cursor()
            except sqlite3.Error as error:
                raise LedgerError(
                    "cannot read the SQLite ledger", file=self.location, found=str(error)
                ) from error

    def _is_conflict(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.IntegrityError | sqlite3.OperationalError)

    def execute_unchecked(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run raw SQL (tests use it to tamper with rows, as an attacker with file access could)."""
        with self._lock:
            self._conn.execute(sql, tuple(params))
        self._cache = []

    def close(self) -> None:
        self._conn.close()


class PostgresLedger(_SqlLedger):
    """The multi-user ledger: a PostgreSQL table; appends take an advisory transaction lock."""

    _mark = "%s"

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        table: str = "kfm_ledger",
        clock: Clock | None = None,
    ) -> None:
        import psycopg

        for name, value in (("schema", schema), ("table", table)):
            if not value.replace("_", "").isalnum():
                raise LedgerError(
                    "invalid identifier", field=name, expected="letters, digits, _", found=value
                )
        self.url = url
        self.schema = schema
        self.table = table
        self.location = f"{_redact(url)} ({schema}.{table})"
        self._clock = clock or _now
        self._cache = []
        self._lock = threading.Lock()
        self._psycopg = psycopg
        self._table = f'"{schema}"."{table}"'
        self._lock_key = int.from_bytes(
            hashlib.sha256(f"{schema}.{table}".encode()).digest()[:8], "big", signed=True
        )
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                self._conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._table} ("
                    " seq BIGINT PRIMARY KEY, prev_hash TEXT NOT NULL UNIQUE,"
                    " entry_hash TEXT NOT NULL UNIQUE, recorded_at TEXT NOT NULL,"
                    " envelope TEXT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,"
                    " role TEXT NOT NULL, version TEXT NOT NULL, time TEXT NOT NULL,"
                    " target_version TEXT)"
                )
        except psycopg.Error as error:
            raise LedgerError(
                "cannot open the PostgreSQL ledger",
                file=self.location,
                found=str(error).strip().splitlines()[0],
            ) from error

    @contextmanager
    def _locked(self) -> Iterator[Any]:
        with self._lock:
            try:
                with self._conn.transaction():
                    cursor = self._conn.cursor()
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                    yield cursor
            except self._psycopg.OperationalError as error:
                raise LedgerError(
                    "PostgreSQL ledger is unavailable",
                    file=self.location,
                    found=str(error).strip().splitlines()[0],
                ) from error

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        with self._lock:
            try:
                yield self._conn.cursor()
            except self._psycopg.Error as error:
                raise LedgerError(
                    "cannot read the PostgreSQL ledger",
                    file=self.location,
                    found=str(error).strip().splitlines()[0],
                ) from error

    def _is_conflict(self, error: BaseException) -> bool:
        errors = self._psycopg.errors
        return isinstance(error, errors.UniqueViolation | errors.SerializationFailure)

    def execute_unchecked(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run raw SQL (``{table}`` is replaced by the qualified table name); tests tamper so."""
        with self._lock:
            self._conn.execute(sql.replace("{table}", self._table), tuple(params))
        self._cache = []

    def drop(self) -> None:
        """Drop the schema with the table (test clean-up)."""
        with self._lock:
            self._conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def close(self) -> None:
        self._conn.close()


def _redact(url: str) -> str:
    """The URL without a password."""
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = url.split("//", 1)
        user = rest.split(":", 1)[0]
        return f"{scheme}//{user}:***@{rest.split('@', 1)[1]}"
    return url


def open_ledger(
    location: str, *, schema: str = "public", table: str = "kfm_ledger", clock: Clock | None = None
) -> Ledger:
    """``postgresql://...`` → :class:`PostgresLedger`; anything else is a SQLite file path."""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresLedger(location, schema=schema, table=table, clock=clock)
    if "://" in location:
        raise LedgerError(
            "unsupported ledger location",
            field="ledger",
            expected="a SQLite file path or postgresql://...",
            found=location,
        )
    return SQLiteLedger(location, clock=clock)
