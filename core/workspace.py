"""The workspace: one directory holding a deployment's state, described by ``kfm.toml``.

Layout made by :func:`init_workspace` (``kfm init``)::

    kfm.toml                      where the registry and the ledger live, and the files below
    governance/policy.toml        copy of the project's policy
    governance/regions.geojson    copy of the example steward regions
    governance/roster.json(.sig)  the roster, holding the pipeline key, signed by the root key
    keys/root.key, keys/root.pub  governance root key (passphrase-protected)
    keys/pipeline.key, .pub       the pipeline key that signs version records, promotions,
                                  rollbacks and attestations
    registry/                     the registry (default; ``s3://...`` in kfm.toml for scale)
    ledger.sqlite                 the ledger (default; ``postgresql://...`` for many users)

The paths under ``governance/`` and ``keys/`` are the defaults of ``kfm roster`` and
``kfm keys`` (core/cli/signing.py), so those commands work unchanged inside the workspace.

Which workspace is used is decided by the CLI (``--workspace``, then ``KFM_WORKSPACE``, then
``.kfm/``) with :func:`resolve_workspace_path`; core objects get it through constructors.

Nothing in the workspace vouches for itself: ``keys/root.pub`` is trusted only when its fingerprint
equals the pin the client's :class:`core.decisions.trust.TrustStore` holds for this workspace
(``KFM_ROOT_FINGERPRINT``, else ``<kfm home>/trust.toml``). :func:`init_workspace` pins the root
key it creates; :meth:`Workspace.roster` refuses a root key without a pin or with another
fingerprint, and a roster older than the one this client's witness recorded.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from core.decisions.ledger import Clock, Ledger, open_ledger
from core.decisions.roster import (
    RosterEntry,
    TrustedRoster,
    add_reviewer,
    check_roster_serial,
    load_roster,
    sign_roster,
)
from core.decisions.trust import RootPin, TrustStore
from core.errors import KfmError, TrustError, WorkspaceError
from core.policy import DEFAULT_POLICY_PATH, Policy, load_policy
from core.registry.stores import open_store
from core.registry.versions import Registry
from core.signing.keys import (
    KeySigner,
    generate_key_pair,
    key_fingerprint,
    load_public_key,
    load_signer,
    public_key_from_pem,
    public_key_pem,
)

if TYPE_CHECKING:
    from core.decisions.engine import DecisionEngine

CONFIG_NAME = "kfm.toml"
DEFAULT_DIR = ".kfm"
DEFAULT_REGIONS_PATH = DEFAULT_POLICY_PATH.parent / "regions.geojson"
PIPELINE_ID = "pipeline"
PIPELINE_PASSPHRASE_ENV = "KFM_PIPELINE_PASSPHRASE"

_CONFIG_TEMPLATE = """\
# KFM workspace: where this deployment's registry and ledger live.
format = 1

[registry]
# A path (relative to this file) by default; s3://bucket/prefix when users outgrow one machine.
location = "{registry}"

[ledger]
# A SQLite file by default; postgresql://user@host:5432/db for many reviewers.
location = "{ledger}"
schema = "public"

[governance]
policy = "governance/policy.toml"
regions = "governance/regions.geojson"
roster = "governance/roster.json"
root_public_key = "keys/root.pub"

[pipeline]
id = "{pipeline_id}"
key = "keys/{pipeline_id}.key"
# Name of the environment variable holding the pipeline key's passphrase.
passphrase_env = "{passphrase_env}"
"""


def resolve_workspace_path(option: Path | None, env_value: str | None, cwd: Path) -> Path:
    """``--workspace`` if given, else ``KFM_WORKSPACE`` if set, else ``<cwd>/.kfm``."""
    if option is not None:
        return option
    if env_value:
        return Path(env_value)
    return cwd / DEFAULT_DIR


@dataclass(frozen=True)
class WorkspaceConfig:
    """Parsed ``kfm.toml``."""

    registry: str
    ledger: str
    ledger_schema: str = "public"
    policy: str = "governance/policy.toml"
    regions: str = "governance/regions.geojson"
    roster: str = "governance/roster.json"
    root_public_key: str = "keys/root.pub"
    pipeline_id: str = PIPELINE_ID
    pipeline_key: str = f"keys/{PIPELINE_ID}.key"
    pipeline_passphrase_env: str = PIPELINE_PASSPHRASE_ENV
    storage_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workspace:
    """An opened workspace; builds the engine's objects from its ``kfm.toml``.

    ``trust`` holds the root key pins; without one, nothing that needs the roster works.
    """

    root: Path
    config: WorkspaceConfig
    trust: TrustStore | None = field(default=None, compare=False)

    @classmethod
    def open(cls, root: Path, *, trust: TrustStore | None = None) -> Workspace:
        """Read ``<root>/kfm.toml``; a missing or malformed file is a clear error.

        ``trust`` is the client's :class:`TrustStore`; reading the roster (and everything built
        on it) needs it.
        """
        path = root / CONFIG_NAME
        if not path.is_file():
            raise WorkspaceError(
                "no workspace here",
                file=str(path),
                expected="a kfm.toml made by `kfm init`",
                found="missing",
                hint="run `kfm init` or pass --workspace DIR (or set KFM_WORKSPACE)",
            )
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise WorkspaceError(f"not valid TOML: {error}", file=str(path)) from error
        return cls(root=root, config=_parse_config(raw, str(path)), trust=trust)

    def path(self, relative: str) -> Path:
        """A workspace-relative path from ``kfm.toml`` (absolute paths are kept)."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.root / candidate

    def _location(self, value: str) -> str:
        return value if "://" in value else str(self.path(value))

    def registry(
        self, *, clock: Clock | None = None, roster: TrustedRoster | None = None
    ) -> Registry:
        """The registry, trusting the pipeline key of the verified roster (``roster`` if given)."""
        store = open_store(
            self._location(self.config.registry), storage_options=self.config.storage_options
        )
        return Registry(store, pipeline_key=self.pipeline_public_key(roster), clock=clock)

    def pipeline_public_key(self, roster: TrustedRoster | None = None) -> EllipticCurvePublicKey:
        """The public key of the workspace's pipeline (``[pipeline] id``) in the trusted roster."""
        trusted = roster if roster is not None else self.roster()
        entry = trusted.entry(self.config.pipeline_id)
        if entry is None or "pipeline" not in entry.roles:
            raise WorkspaceError(
                "the roster holds no pipeline key for this workspace",
                file=str(self.roster_path),
                field=f"reviewers[{self.config.pipeline_id}]",
                expected=f"an entry '{self.config.pipeline_id}' with the role 'pipeline'",
                found="none" if entry is None else list(entry.roles),
            )
        return public_key_from_pem(entry.public_key, source=str(self.roster_path))

    def ledger(self, *, clock: Clock | None = None) -> Ledger:
        return open_ledger(
            self._location(self.config.ledger), schema=self.config.ledger_schema, clock=clock
        )

    def policy(self) -> Policy:
        return load_policy(self.path(self.config.policy))

    @property
    def regions_path(self) -> Path:
        return self.path(self.config.regions)

    @property
    def roster_path(self) -> Path:
        return self.path(self.config.roster)

    @property
    def root_public_key_path(self) -> Path:
        return self.path(self.config.root_public_key)

    def trust_store(self) -> TrustStore:
        """The client's trust store; refuses when the workspace was opened without one."""
        if self.trust is None:
            raise TrustError(
                "the workspace was opened without a trust store: its root key cannot be checked",
                file=str(self.root_public_key_path),
                expected="Workspace.open(root, trust=TrustStore(...))",
                found="none",
            )
        return self.trust

    def root_fingerprint(self) -> str:
        """Fingerprint of the workspace's ``keys/root.pub`` as it is (not yet checked)."""
        return key_fingerprint(load_public_key(self.root_public_key_path))

    def root_pin(self) -> RootPin:
        """The pin ``keys/root.pub`` matches; refuses a missing pin or another fingerprint."""
        found = self.root_fingerprint()
        key_file = str(self.root_public_key_path)
        return self.trust_store().require_root(self.root, found, key_file=key_file)

    def roster(self) -> TrustedRoster:
        """The roster, verified against the pinned root key, not older than this client saw."""
        trust = self.trust_store()
        root_key = load_public_key(self.root_public_key_path)
        key_file = str(self.root_public_key_path)
        trust.require_root(self.root, key_fingerprint(root_key), key_file=key_file)
        trusted = load_roster(self.roster_path, root_key)
        witness = trust.witness(trusted.root_fingerprint)
        if witness is not None:
            where = f"this client's witness ({trust.witness_path(witness.root)})"
            check_roster_serial(trusted, {where: witness.roster_serial})
        return trusted

    def pipeline_signer(self, passphrase: str) -> KeySigner:
        return load_signer(
            self.path(self.config.pipeline_key), passphrase, key_id=self.config.pipeline_id
        )

    def reviewer_key_path(self, reviewer_id: str) -> Path:
        """Where a reviewer's passphrase-protected private key lives in this workspace."""
        if not reviewer_id or "/" in reviewer_id or reviewer_id.startswith("."):
            raise WorkspaceError(
                "invalid reviewer id", field="reviewer", expected="a roster id", found=reviewer_id
            )
        return self.root / "keys" / f"{reviewer_id}.key"

    def decision_engine(self, pipeline_passphrase: str | None = None) -> DecisionEngine:
        """The decision engine over this workspace; with the pipeline key when given its passphrase.

        It holds the ledger open: use it as ``with ws.decision_engine() as engine:``.
        """
        from core.decisions.engine import DecisionEngine

        roster = self.roster()
        return DecisionEngine(
            ledger=self.ledger(),
            registry=self.registry(roster=roster),
            roster=roster,
            policy=self.policy().decisions,
            pipeline=None
            if pipeline_passphrase is None
            else self.pipeline_signer(pipeline_passphrase),
        )


def _parse_config(raw: Mapping[str, Any], source: str) -> WorkspaceConfig:
    def table(name: str) -> Mapping[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise WorkspaceError(
                "must be a table", file=source, field=name, expected="table", found=value
            )
        return value

    def text(section: Mapping[str, Any], key: str, default: str | None, where: str) -> str:
        value = section.get(key, default)
        if not isinstance(value, str) or not value:
            raise WorkspaceError(
                "missing or not text",
                file=source,
                field=f"{where}.{key}",
                expected="a non-empty string",
                found=value,
            )
        return value

    if raw.get("format") != 1:
        raise WorkspaceError(
            "unsupported workspace format",
            file=source,
            field="format",
            expected=1,
            found=raw.get("format"),
        )
    registry, ledger = table("registry"), table("ledger")
    governance, pipeline = table("governance"), table("pipeline")
    options = registry.get("storage_options", {})
    if not isinstance(options, dict):
        raise WorkspaceError(
            "must be a table",
            file=source,
            field="registry.storage_options",
            expected="table",
            found=options,
        )
    return WorkspaceConfig(
        registry=text(registry, "location", None, "registry"),
        ledger=text(ledger, "location", None, "ledger"),
        ledger_schema=text(ledger, "schema", "public", "ledger"),
        policy=text(governance, "policy", "governance/policy.toml", "governance"),
        regions=text(governance, "regions", "governance/regions.geojson", "governance"),
        roster=text(governance, "roster", "governance/roster.json", "governance"),
        root_public_key=text(governance, "root_public_key", "keys/root.pub", "governance"),
        pipeline_id=text(pipeline, "id", PIPELINE_ID, "pipeline"),
        pipeline_key=text(pipeline, "key", f"keys/{PIPELINE_ID}.key", "pipeline"),
        pipeline_passphrase_env=text(
            pipeline, "passphrase_env", PIPELINE_PASSPHRASE_ENV, "pipeline"
        ),
        storage_options=options,
    )


def init_workspace(
    root: Path,
    *,
    trust: TrustStore,
    root_passphrase: str,
    pipeline_passphrase: str,
    registry: str = "registry",
    ledger: str = "ledger.sqlite",
    policy_source: Path = DEFAULT_POLICY_PATH,
    regions_source: Path = DEFAULT_REGIONS_PATH,
    now: datetime | None = None,
) -> Workspace:
    """Create a workspace: kfm.toml, policy and regions copies, root and pipeline keys, roster.

    The new root key's fingerprint is pinned for ``root`` in ``trust`` (replacing an earlier pin
    for that path: the keys of the workspace that was there are gone).
    """
    if (root / CONFIG_NAME).exists():
        raise WorkspaceError(
            "a workspace already exists here",
            file=str(root / CONFIG_NAME),
            expected="no kfm.toml",
            found="an existing workspace",
            hint="use it as is, or choose another --workspace",
        )
    for source in (policy_source, regions_source):
        if not source.is_file():
            raise WorkspaceError("source file for the workspace is missing", file=str(source))
    load_policy(policy_source)  # never copy a broken policy
    for value, name in ((registry, "registry"), (ledger, "ledger")):
        if not value or any(c in value for c in '"\n\\'):
            raise WorkspaceError(
                "invalid location", field=name, expected="a path or URL", found=value
            )
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "governance").mkdir(exist_ok=True)
        shutil.copyfile(policy_source, root / "governance" / "policy.toml")
        shutil.copyfile(regions_source, root / "governance" / "regions.geojson")
        keys = root / "keys"
        root_pair = generate_key_pair("root", keys, root_passphrase)
        pipeline_pair = generate_key_pair(PIPELINE_ID, keys, pipeline_passphrase)
        roster_path = root / "governance" / "roster.json"
        add_reviewer(
            roster_path,
            RosterEntry(
                id=PIPELINE_ID,
                name="KFM deployment pipeline",
                roles=("pipeline",),
                public_key=public_key_pem(load_public_key(pipeline_pair.public_key)),
                valid_from=(now or datetime.now(UTC)).replace(microsecond=0),
            ),
        )
        sign_roster(roster_path, load_signer(root_pair.private_key, root_passphrase))
        config = _CONFIG_TEMPLATE.format(
            registry=registry,
            ledger=ledger,
            pipeline_id=PIPELINE_ID,
            passphrase_env=PIPELINE_PASSPHRASE_ENV,
        )
        trust.pin(root, key_fingerprint(load_public_key(root_pair.public_key)))
        # kfm.toml last: a workspace exists only once everything it points at exists.
        (root / CONFIG_NAME).write_text(config, encoding="utf-8")
    except KfmError:
        raise
    except OSError as error:
        raise WorkspaceError(
            "cannot create the workspace", file=str(root), found=error.strerror
        ) from error
    return Workspace.open(root, trust=trust)
