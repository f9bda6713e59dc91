"""``kfm sign``, ``kfm verify``, ``kfm keys`` and ``kfm roster``: integrity and identity.

Every path is a parameter (``--roster``, ``--root-key``, ``--root-pub``, ``--key``) with a
default relative to the current directory; nothing is read from globals.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from core.cli._output import console, print_json, styled
from core.cli.workspace import open_workspace, workspace_option
from core.decisions.roster import (
    DEFAULT_ROSTER_PATH,
    ROLES,
    RosterEntry,
    TrustedRoster,
    add_reviewer,
    default_signature_path,
    load_roster,
    revoke_reviewer,
    sign_roster,
)
from core.errors import KeyError_, RosterError, VerificationError
from core.registry.audit import audit_version
from core.registry.stores import LocalStore
from core.registry.versions import Registry
from core.signing.bundle import VerificationReport, check_model, sign_model, sign_model_sigstore
from core.signing.keys import (
    KeySigner,
    generate_key_pair,
    load_public_key,
    load_signer,
    passphrase_from_env,
    public_key_pem,
)

PASSPHRASE_ENV_HELP = "Read the passphrase from this environment variable instead of a prompt."


def _passphrase(passphrase_env: str | None, *, confirm: bool = False) -> str:
    if passphrase_env:
        return passphrase_from_env(passphrase_env)
    value: str = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return value


def _open_key(path: Path, passphrase_env: str | None) -> KeySigner:
    return load_signer(path, _passphrase(passphrase_env))


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise RosterError(
            "not an ISO 8601 time",
            field=option,
            expected="e.g. 2026-11-01T00:00:00Z",
            found=value,
        ) from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _roster_table(trusted: TrustedRoster) -> Table:
    table = Table(title=f"roster {trusted.source} (root key {trusted.root_fingerprint[:16]}…)")
    for column in ("id", "name", "roles", "valid from", "valid until", "revoked", "key"):
        table.add_column(column, overflow="fold")
    for entry in trusted.roster.reviewers:
        table.add_row(
            entry.id,
            entry.name,
            ", ".join(entry.roles),
            entry.valid_from.isoformat(),
            entry.valid_until.isoformat() if entry.valid_until else "-",
            ("since " + entry.revoked_at.isoformat() if entry.revoked_at else "yes")
            if entry.revoked
            else "no",
            entry.fingerprint[:16] + "…",
        )
    return table


def _registry_version_dir(path: Path) -> tuple[Path, str] | None:
    """``(store root, version)`` when ``path`` is ``<store>/climate/models/<version>``."""
    folder = path.parent if path.is_file() else path
    models = folder.parent
    index = models.parent / "index" / f"{folder.name}.json"
    if models.name == "models" and models.parent.name == "climate" and index.is_file():
        return models.parent.parent, folder.name
    return None


def _verify_report(
    path: Path | None, version: str | None, key: Path | None, workspace: Path | None
) -> VerificationReport:
    """What ``kfm verify`` checks, once the user has said which key to trust."""
    if (path is None) == (version is None):
        raise VerificationError(
            "give a signed directory or --version, not both",
            field="PATH / --version",
            expected="exactly one",
            found="both" if path is not None else "neither",
        )
    explicit_workspace = workspace is not None or bool(os.environ.get("KFM_WORKSPACE"))
    if key is None and not explicit_workspace:
        raise VerificationError(
            "no trusted key: a signature by any key would verify",
            field="--key / --workspace",
            expected="--key PUB (the signer's public key), or --workspace DIR (or "
            "KFM_WORKSPACE) to trust that workspace roster's pipeline key",
            found="neither",
            hint="a model re-signed with a stranger's key carries a valid signature: only the "
            "key you trust tells the two apart",
        )
    ws = open_workspace(workspace) if (explicit_workspace or version is not None) else None
    trusted = load_public_key(key) if key is not None else None
    if version is not None:
        assert ws is not None
        registry = ws.registry()
        if trusted is not None:
            registry = Registry(registry.store, pipeline_key=trusted)
        return audit_version(registry, version)
    assert path is not None
    if trusted is None:
        assert ws is not None
        trusted = ws.pipeline_public_key()
    stored = _registry_version_dir(path)
    if stored is not None:
        root, name = stored
        return audit_version(Registry(LocalStore(root), pipeline_key=trusted), name)
    return check_model(path, public_key=trusted)


def register(app: typer.Typer) -> None:
    @app.command("sign")
    def sign(
        directory: Path = typer.Argument(..., help="Candidate or registry version to sign."),
        key: Path | None = typer.Option(None, "--key", help="EC P-256 private key (PEM)."),
        passphrase_env: str | None = typer.Option(
            None, "--passphrase-env", help=PASSPHRASE_ENV_HELP
        ),
        sigstore: bool = typer.Option(
            False, "--sigstore", help="Sign keylessly with Sigstore (needs network + identity)."
        ),
        identity_token_env: str | None = typer.Option(
            None,
            "--identity-token-env",
            help="With --sigstore: environment variable holding an OIDC identity token.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print integrity.json content."),
    ) -> None:
        """Write model.sig (OpenSSF model-signing bundle) and integrity.json into DIRECTORY."""
        if sigstore == (key is not None):
            raise KeyError_(
                "choose one way to sign",
                field="--key/--sigstore",
                expected="exactly one of --key KEY or --sigstore",
                found="both" if sigstore else "neither",
            )
        if sigstore:
            token = passphrase_from_env(identity_token_env) if identity_token_env else None
            record = sign_model_sigstore(directory, identity_token=token)
        else:
            assert key is not None
            record = sign_model(directory, _open_key(key, passphrase_env))
        if as_json:
            print_json(record.model_dump(mode="json", by_alias=True))
            return
        console.print(f"signed {len(record.manifest.files)} files in {directory}")
        console.print(f"  manifest digest  {record.integrity.hash}")
        console.print(f"  root digest      {record.root_digest}")
        console.print(f"  signature        {directory / record.integrity.signature.href}")

    @app.command("verify")
    def verify(
        path: Path | None = typer.Argument(
            None, help="Signed directory or its model.sig (a candidate, or a registry version)."
        ),
        version: str | None = typer.Option(
            None, "--version", help="A version of the workspace's registry instead of PATH."
        ),
        key: Path | None = typer.Option(
            None, "--key", help="Trust this public key (PEM) for the signatures."
        ),
        workspace: Path | None = workspace_option(),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Check every digest, the file list and the signature; exit 0 if all hold, 1 if not.

        A signature proves something only against a key you trust: give --key PUB, or
        --workspace DIR (or KFM_WORKSPACE) to trust that workspace roster's pipeline key. A
        registry version (--version V, or PATH inside a local registry) is checked whole: its
        signed record, every stored file, and model.sig over the candidate's files.
        """
        report = _verify_report(path, version, key, workspace)
        if as_json:
            print_json(report.to_dict())
        else:
            table = Table(title=f"verify {report.path}")
            for column in ("check", "state", "file", "detail"):
                table.add_column(column, overflow="fold")
            styles = {
                "ok": styled("[green]ok[/]"),
                "failed": styled("[red]FAIL[/]"),
                "skipped": styled("[yellow]skip[/]"),
            }
            for c in report.checks:
                table.add_row(c.name, styles[c.status], c.file, c.detail)
            console.print(table)
            console.print(
                styled("[green]verified[/]")
                if report.ok
                else styled(
                    "[red]verification failed[/]: {}",
                    ", ".join(sorted({f"{c.name} ({c.file})" for c in report.failures})),
                )
            )
        raise typer.Exit(0 if report.ok else 1)

    keys = typer.Typer(
        help="EC P-256 keys for reviewers, the pipeline and the root.", no_args_is_help=True
    )

    @keys.command("new")
    def keys_new(
        key_id: str = typer.Option(..., "--id", help="Key owner id, e.g. 'alice' or 'root'."),
        out: Path = typer.Option(Path("keys"), "--out", help="Folder to write ID.key/ID.pub."),
        passphrase_env: str | None = typer.Option(
            None, "--passphrase-env", help=PASSPHRASE_ENV_HELP
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Create a passphrase-protected private key and its public key."""
        paths = generate_key_pair(key_id, out, _passphrase(passphrase_env, confirm=True))
        result = {
            "id": paths.key_id,
            "private_key": str(paths.private_key),
            "public_key": str(paths.public_key),
            "fingerprint": paths.fingerprint,
        }
        if as_json:
            print_json(result)
            return
        console.print(f"private key  {paths.private_key} (passphrase-protected)")
        console.print(f"public key   {paths.public_key}")
        console.print(f"fingerprint  {paths.fingerprint}")

    app.add_typer(keys, name="keys")

    roster = typer.Typer(
        help="The roster of reviewers, signed by the governance root key.", no_args_is_help=True
    )
    roster_option = typer.Option(DEFAULT_ROSTER_PATH, "--roster", help="Roster JSON file.")

    @roster.command("add")
    def roster_add(
        reviewer_id: str = typer.Option(..., "--id", help="Reviewer id."),
        role: list[str] = typer.Option(
            ..., "--role", help=f"Role to grant (repeatable): {', '.join(ROLES)}."
        ),
        public_key: Path = typer.Option(..., "--public-key", help="Reviewer public key (PEM)."),
        name: str | None = typer.Option(None, "--name", help="Display name (default: id)."),
        valid_from: str | None = typer.Option(None, "--valid-from", help="ISO time; default now."),
        valid_until: str | None = typer.Option(
            None, "--valid-until", help="ISO time; default none."
        ),
        roster_path: Path = roster_option,
    ) -> None:
        """Append a reviewer; the roster must be re-signed (kfm roster sign) before use."""
        start = _parse_time(valid_from, "--valid-from") or datetime.now(UTC).replace(microsecond=0)
        try:
            entry = RosterEntry(
                id=reviewer_id,
                name=name or reviewer_id,
                roles=tuple(role),  # type: ignore[arg-type]  # validated by pydantic
                public_key=public_key_pem(load_public_key(public_key)),
                valid_from=start,
                valid_until=_parse_time(valid_until, "--valid-until"),
            )
        except ValueError as error:
            raise RosterError(
                "invalid reviewer",
                file=str(roster_path),
                field=f"reviewers[{reviewer_id}]",
                expected=f"roles among {', '.join(ROLES)} and a valid window",
                found=str(error).splitlines()[-1] if str(error) else type(error).__name__,
            ) from error
        add_reviewer(roster_path, entry)
        console.print(
            f"added '{entry.id}' ({', '.join(entry.roles)}) to {roster_path}; "
            "the roster is unsigned until `kfm roster sign`"
        )

    @roster.command("revoke")
    def roster_revoke(
        reviewer_id: str = typer.Option(..., "--id", help="Reviewer whose key to revoke."),
        at: str | None = typer.Option(
            None, "--at", help="ISO time the key stops being valid; default now."
        ),
        roster_path: Path = roster_option,
    ) -> None:
        """Revoke a reviewer's key from a time on; re-sign the roster (kfm roster sign) after."""
        when = _parse_time(at, "--at") or datetime.now(UTC).replace(microsecond=0)
        revoke_reviewer(roster_path, reviewer_id, when)
        console.print(
            f"revoked '{reviewer_id}' from {when.isoformat()} in {roster_path}; "
            "the roster is unsigned until `kfm roster sign`"
        )

    @roster.command("sign")
    def roster_sign(
        root_key: Path = typer.Option(
            Path("keys") / "root.key", "--root-key", help="Governance root private key."
        ),
        passphrase_env: str | None = typer.Option(
            None, "--passphrase-env", help=PASSPHRASE_ENV_HELP
        ),
        roster_path: Path = roster_option,
    ) -> None:
        """Sign the roster with the governance root key (writes ROSTER.sig)."""
        signer = _open_key(root_key, passphrase_env)
        target = sign_roster(roster_path, signer)
        console.print(f"signed {roster_path} with root key {signer.fingerprint[:16]}…: {target}")

    root_pub_option = typer.Option(
        Path("keys") / "root.pub", "--root-pub", help="Governance root public key."
    )

    @roster.command("verify")
    def roster_verify(
        root_pub: Path = root_pub_option,
        roster_path: Path = roster_option,
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Check the roster's signature by the root key (exit 2 with the reason if it fails)."""
        trusted = load_roster(roster_path, load_public_key(root_pub))
        if as_json:
            print_json(
                {
                    "ok": True,
                    "roster": str(roster_path),
                    "signature": str(default_signature_path(roster_path)),
                    "root_fingerprint": trusted.root_fingerprint,
                    "reviewers": len(trusted.roster.reviewers),
                }
            )
            return
        console.print(
            styled(
                "[green]roster verified[/]: {} reviewers, signed by root key {}",
                len(trusted.roster.reviewers),
                trusted.root_fingerprint,
            )
        )

    @roster.command("show")
    def roster_show(
        root_pub: Path = root_pub_option,
        roster_path: Path = roster_option,
        as_json: bool = typer.Option(False, "--json", help="Print the roster as JSON."),
    ) -> None:
        """Verify the roster, then list its reviewers."""
        trusted = load_roster(roster_path, load_public_key(root_pub))
        if as_json:
            print_json(trusted.roster.to_dict())
            return
        console.print(_roster_table(trusted))

    app.add_typer(roster, name="roster")
