"""`kfm registry fsck` on a governed workspace: it writes the files a rollback lacks."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from core.cli import app
from core.registry.layout import ROLLBACKS

if TYPE_CHECKING:  # the fixture's type; conftest modules are not imported by name
    from tests.core.decisions.conftest import Governed

runner = CliRunner()


def fsck(*args: str) -> dict:
    result = runner.invoke(app, ["registry", "fsck", *args, "--json"])
    assert result.exit_code == 0, result.output + str(result.exception)
    data: dict = json.loads(result.stdout)
    return data


def test_fsck_rewrites_the_files_a_rollback_lacks(governed: Governed) -> None:
    """A process stopped after a veto's append leaves its rollback without files: fsck --dry-run
    names them, fsck writes the same bytes the engine wrote, and a second fsck finds nothing."""
    veto = governed.promote_and_veto()
    store = governed.ws.registry().store
    keys = sorted(store.list(ROLLBACKS))
    assert len(keys) == 3 and all(f"/{veto:08d}-1.1.0/" in key for key in keys)
    written = {key: store.read(key) for key in keys}
    for key in keys:
        store.delete(key)
    assert sorted(fsck("--dry-run")["rollback_files"]) == keys
    assert store.list(ROLLBACKS) == []
    assert sorted(fsck()["rollback_files"]) == keys
    assert {key: store.read(key) for key in keys} == written
    assert fsck()["rollback_files"] == []
