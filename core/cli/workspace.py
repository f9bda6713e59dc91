"""``kfm init`` and workspace resolution shared by the registry, ledger and decision commands.

Resolution happens here, in the CLI only: ``--workspace DIR``, else ``KFM_WORKSPACE``, else
``.kfm/`` in the current directory. So does the client's trust store (root key pins and witness):
``KFM_HOME``, else ``$XDG_CONFIG_HOME/kfm``, else ``~/.config/kfm``, and ``KFM_ROOT_FINGERPRINT``
(:func:`trust_store`). ``kfm roster add/sign`` (core/cli/signing.py) default to
``governance/roster.json`` and ``keys/root.key``, the same relative paths a workspace uses, so
they work inside the workspace; ``kfm init`` prints the exact commands.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import typer

from core.cli._output import console, print_json, styled
from core.decisions.engine import DecisionEngine
from core.decisions.trust import ROOT_FINGERPRINT_ENV, TrustStore
from core.errors import KeyError_
from core.signing.keys import passphrase_from_env
from core.workspace import Workspace, init_workspace, resolve_workspace_path

WORKSPACE_HELP = "Workspace directory (default: $KFM_WORKSPACE, else ./.kfm)."
PASSPHRASE_ENV_HELP = "Read the passphrase from this environment variable instead of a prompt."


def workspace_option() -> Path | None:
    return typer.Option(None, "--workspace", "-w", help=WORKSPACE_HELP)


def resolve(option: Path | None) -> Path:
    """The workspace directory the user means."""
    return resolve_workspace_path(option, os.environ.get("KFM_WORKSPACE"), Path.cwd())


def trust_store() -> TrustStore:
    """This client's pins and witness, where the operator's environment puts them."""
    try:
        user_home: Path | None = Path.home()
    except (RuntimeError, KeyError):  # no HOME and no password entry
        user_home = None
    return TrustStore.from_environment(os.environ, user_home)


def open_workspace(option: Path | None) -> Workspace:
    return Workspace.open(resolve(option), trust=trust_store())


def read_passphrase(variable: str | None, prompt: str, *, confirm: bool = False) -> str:
    """From ``--passphrase-env VAR`` if given, else an interactive prompt."""
    if variable:
        return passphrase_from_env(variable)
    value = getpass.getpass(f"{prompt}: ")
    if confirm and getpass.getpass(f"{prompt} (again): ") != value:
        raise KeyError_("passphrases differ", field="passphrase", expected="the same twice")
    return value


def pipeline_passphrase(workspace: Workspace) -> str:
    """The pipeline key's passphrase from the variable named in kfm.toml, else a prompt."""
    variable = workspace.config.pipeline_passphrase_env
    if os.environ.get(variable):
        return passphrase_from_env(variable)
    return read_passphrase(None, f"pipeline key passphrase (or set {variable})")


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        workspace: Path | None = workspace_option(),
        registry: str = typer.Option(
            "registry", "--registry", help="Registry location: a path or s3://bucket/prefix."
        ),
        ledger: str = typer.Option(
            "ledger.sqlite", "--ledger", help="Ledger: a SQLite path or postgresql://..."
        ),
        root_passphrase_env: str | None = typer.Option(
            None, "--root-passphrase-env", help=PASSPHRASE_ENV_HELP
        ),
        pipeline_passphrase_env: str | None = typer.Option(
            None, "--pipeline-passphrase-env", help=PASSPHRASE_ENV_HELP
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Create a workspace: kfm.toml, policy, regions, root and pipeline keys, signed roster."""
        root = resolve(workspace)
        root_pass = read_passphrase(root_passphrase_env, "new root key passphrase", confirm=True)
        pipe_pass = read_passphrase(
            pipeline_passphrase_env, "new pipeline key passphrase", confirm=True
        )
        trust = trust_store()
        ws = init_workspace(
            root,
            trust=trust,
            root_passphrase=root_pass,
            pipeline_passphrase=pipe_pass,
            registry=registry,
            ledger=ledger,
        )
        fingerprint = ws.root_fingerprint()
        if as_json:
            print_json(
                {
                    "workspace": str(ws.root),
                    "registry": ws.config.registry,
                    "ledger": ws.config.ledger,
                    "roster": str(ws.roster_path),
                    "root_fingerprint": fingerprint,
                    "pinned_in": str(trust.trust_file),
                }
            )
            return
        console.print(f"workspace created in {ws.root}", markup=False)
        console.print(f"  registry {ws.config.registry}   ledger {ws.config.ledger}", markup=False)
        console.print(f"  root key {fingerprint} pinned in {trust.trust_file}", markup=False)
        if trust.env_fingerprint is not None and trust.env_fingerprint != fingerprint:
            console.print(
                styled(
                    "[yellow]note[/]: ${} is set to another fingerprint and "
                    "overrides this pin: unset it to use this workspace",
                    ROOT_FINGERPRINT_ENV,
                )
            )
        console.print("add reviewers from inside the workspace, then re-sign the roster:")
        console.print(
            f"  cd {ws.root} && kfm roster add --id alice --role council --public-key PUB"
        )
        console.print(f"  cd {ws.root} && kfm roster sign")


def build_engine(ws: Workspace, *, with_pipeline: bool) -> DecisionEngine:
    """The decision engine over the workspace's ledger, registry, roster and policy."""
    return ws.decision_engine(pipeline_passphrase(ws) if with_pipeline else None)
