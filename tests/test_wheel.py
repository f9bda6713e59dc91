"""The project as an installed wheel: built offline, installed into a fresh venv outside the
checkout, it carries its packaged data and `kfm ci` passes on the reference candidate there."""

from __future__ import annotations

import base64
import email
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

WHEEL_SOURCES = ("pyproject.toml", "README.md", "core", "app")
RESOURCES = REPO_ROOT / "core" / "resources"


def _run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _can_build_wheels() -> bool:
    """Whether this interpreter's setuptools has ``bdist_wheel`` (70.1+, or the wheel package)."""
    for module in ("setuptools.command.bdist_wheel", "wheel.bdist_wheel"):
        probe = [sys.executable, "-c", f"import {module}"]
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return True
    return False


def build_wheel(source: Path, out: Path) -> Path:
    """A wheel of the project in ``source``, built offline with this interpreter's setuptools.

    With a setuptools that can build wheels, ``pip wheel --no-deps --no-build-isolation``. The
    setuptools 65.5 that Python 3.11's venv brings cannot (no ``bdist_wheel`` without the
    ``wheel`` package, and build isolation would download one): then setuptools itself lays out
    the wheel's contents from pyproject.toml (``egg_info`` for the metadata, ``build_py`` for the
    packages and their package data, exactly what ``bdist_wheel`` puts in a pure-Python wheel),
    and they are zipped as the wheel format prescribes (dist-info with WHEEL and RECORD).
    """
    out.mkdir(parents=True, exist_ok=True)
    if _can_build_wheels():
        _run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w"]
            + [str(out), str(source)],
            cwd=source,
        )
        return next(out.glob("*.whl"))
    lib, meta = out / "lib", out / "meta"
    meta.mkdir()
    setup = "from setuptools import setup; setup()"
    _run(
        [sys.executable, "-c", setup, "-q", "egg_info", "--egg-base", str(meta)]
        + ["build_py", "--build-lib", str(lib)],
        cwd=source,
    )
    (egg,) = meta.glob("*.egg-info")
    metadata = email.message_from_bytes((egg / "PKG-INFO").read_bytes())
    name, version = metadata["Name"].replace("-", "_"), metadata["Version"]
    dist_info = f"{name}-{version}.dist-info"
    files = {p.relative_to(lib).as_posix(): p.read_bytes() for p in lib.rglob("*") if p.is_file()}
    files[f"{dist_info}/METADATA"] = (egg / "PKG-INFO").read_bytes()
    for extra in ("entry_points.txt", "top_level.txt"):
        files[f"{dist_info}/{extra}"] = (egg / extra).read_bytes()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: setuptools build_py\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    record = []
    for rel, data in sorted(files.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = out / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel, data in sorted(files.items()):
            archive.writestr(rel, data)
    return wheel


@pytest.mark.slow
def test_installed_wheel_runs_kfm_ci_outside_the_checkout(tmp_path: Path) -> None:
    """Built and installed in a fresh venv, the package holds every resource file, imports from
    the venv, and `kfm candidate reference` then `kfm ci` pass there with no checkout in sight.

    Installing every dependency takes ~7 minutes, so the wheel goes in with ``--no-deps`` and a
    ``.pth`` file in the fresh venv appends this test venv's site-packages to its path: the
    dependencies come from there, the project itself only from the wheel (a ``.pth`` line adds a
    folder without running that folder's own ``.pth`` files, so this venv's editable install of
    the project stays out). PYTHONPATH is dropped and every command runs in a temporary folder.
    """
    source = tmp_path / "source"
    source.mkdir()
    for name in WHEEL_SOURCES:
        origin = REPO_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(origin, source / name)
    wheel = build_wheel(source, tmp_path / "dist")
    names = set(zipfile.ZipFile(wheel).namelist())
    resources = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in RESOURCES.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert len(resources) > 20 and resources <= names, sorted(resources - names)
    assert "core/resources/standards/prov/prov-json.schema.json" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
        + ["--no-index", str(wheel)],
        cwd=tmp_path,
    )
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=tmp_path,
    ).strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "KFM_"))}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = json.loads(
        _run(
            [
                str(python),
                "-c",
                "import json, core, core.resources as r; "
                "print(json.dumps([core.__file__, str(r.STANDARDS_PATH)]))",
            ],
            cwd=work,
            env=env,
        )
    )
    assert all(Path(p).is_relative_to(venv) for p in where), where

    kfm = str(venv / "bin" / "kfm")
    _run([kfm, "candidate", "reference", "candidate"], cwd=work, env=env)
    report = json.loads(_run([kfm, "ci", "candidate", "--json"], cwd=work, env=env))
    assert report["passed"] is True, [c for c in report["checks"] if not c["passed"]]
    assert len(report["checks"]) == 9
    stac = next(c for c in report["checks"] if c["id"] == "stac-item")
    assert "packaged standards" in stac["measured"]
