"""Hashing and verifying a 1 GiB model bundle: kfm vs ``sha256sum`` vs model-signing.

Usage::

    .venv/bin/python bench/hashing.py [--size-mib 1024] [--repeats 3] [--layout both]

Writes each bundle in a temporary directory (deleted afterwards), then times, on the same
warm page cache and in the same run:

- hash:   ``core.signing.digests.hash_directory``   | ``sha256sum FILES``    | ``model_signing.hashing``
- verify: ``core.signing.bundle.check_model``      | ``sha256sum -c``       | ``model_signing.verifying``
          (signature + every digest + names)                        (EC key, file serialization)

Two layouts: ``sharded`` (a small ONNX graph plus four external-weight files, the usual shape of
a large exported model) and ``single`` (one 1 GiB file). Prints best-of-N seconds, MiB/s and the
ratios kfm / sha256sum and kfm / model-signing (above 1 means kfm is faster).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model_signing import hashing as ms_hashing  # noqa: E402
from model_signing import signing as ms_signing  # noqa: E402
from model_signing import verifying as ms_verifying  # noqa: E402

from core.signing.bundle import check_model, sign_model  # noqa: E402
from core.signing.digests import hash_directory  # noqa: E402
from core.signing.keys import KeySigner  # noqa: E402

MIB = 1024 * 1024
BLOCK = 64 * MIB


def write_bundle(root: Path, layout: str, size_mib: int) -> list[Path]:
    """Write a model bundle of ``size_mib`` MiB of incompressible bytes; return its files."""
    root.mkdir(parents=True)
    small = {
        "model_metadata.json": b'{"name": "bench"}\n',
        "model_summary.json": b'{"rmse": 0.5}\n',
        "xai/shap_summary.json": os.urandom(200_000),
        "telemetry/runs.jsonl": os.urandom(500_000),
    }
    for name, data in small.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    if layout == "single":
        sizes = {"model.onnx": size_mib * MIB}
    else:
        graph = max(1, size_mib // 16)
        part = (size_mib - graph) // 4
        sizes = {"model.onnx": graph * MIB}
        for index in range(4):
            last = index == 3
            mib = size_mib - graph - 3 * part if last else part
            sizes[f"weights/model.onnx.data.{index}"] = mib * MIB
    block = os.urandom(BLOCK)
    for name, size in sizes.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        with open(root / name, "wb") as handle:
            remaining = size
            while remaining:
                chunk = min(remaining, BLOCK)
                # Vary each block so no two shards are identical.
                handle.write(os.urandom(16) + block[16:chunk] if chunk > 16 else block[:chunk])
                remaining -= chunk
    return sorted(p for p in root.rglob("*") if p.is_file())


def best_of(repeats: int, action: Callable[[], object]) -> float:
    """Smallest wall time of ``repeats`` runs, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def bench_layout(work: Path, layout: str, size_mib: int, repeats: int) -> dict[str, float]:
    bundle = work / f"bundle-{layout}"
    files = write_bundle(bundle, layout, size_mib)
    names = [str(p.relative_to(bundle)) for p in files]
    total = sum(p.stat().st_size for p in files)
    # Warm the page cache so every contender reads from memory.
    for path in files:
        with open(path, "rb") as handle:
            while handle.read(BLOCK):
                pass

    key = ec.generate_private_key(ec.SECP256R1())
    key_file = work / "bench.key"
    pub_file = work / "bench.pub"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub_file.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    sums = work / f"sums-{layout}.txt"

    def sha_hash() -> None:
        with sums.open("w") as out:
            subprocess.run(["sha256sum", *names], cwd=bundle, check=True, stdout=out)

    # Verification: kfm and model-signing each check their own signature over the bundle.
    ms_sig = work / f"ms-{layout}.sig"
    ms_signing.Config().use_elliptic_key_signer(private_key=key_file).set_hashing_config(
        ms_hashing.Config().set_ignored_paths(paths=["model.sig", "integrity.json"])
    ).sign(bundle, ms_sig)
    sign_model(bundle, KeySigner(key_id="bench", private_key=key))

    def kfm_verify() -> None:
        report = check_model(bundle, public_key=key.public_key())
        assert report.ok, report.failures

    def ms_verify() -> None:
        ms_verifying.Config().use_elliptic_key_verifier(public_key=pub_file).verify(bundle, ms_sig)

    contenders: dict[str, Callable[[], object]] = {
        "kfm hash": lambda: hash_directory(bundle),
        "sha256sum hash": sha_hash,
        "model-signing hash": lambda: ms_hashing.Config().hash(bundle),
        "kfm verify": kfm_verify,
        "sha256sum verify": lambda: run(["sha256sum", "--quiet", "-c", str(sums)], bundle),
        "model-signing verify": ms_verify,
    }
    # Interleaved rounds, best time per contender: the machine is shared, so each contender
    # gets the same chances of a quiet moment.
    results = {name: float("inf") for name in contenders}
    for _ in range(repeats):
        for name, action in contenders.items():
            results[name] = min(results[name], best_of(1, action))

    print(f"\n### layout: {layout} ({len(files)} files, {total / MIB:.0f} MiB)\n")
    print("| step | kfm s | kfm MiB/s | sha256sum s | model-signing s | kfm/sha256sum "
          "| kfm/model-signing |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for step in ("hash", "verify"):
        ours = results[f"kfm {step}"]
        coreutils = results[f"sha256sum {step}"]
        theirs = results[f"model-signing {step}"]
        print(
            f"| {step} | {ours:.2f} | {total / MIB / ours:.0f} | {coreutils:.2f} | {theirs:.2f} "
            f"| {coreutils / ours:.2f}x | {theirs / ours:.2f}x |"
        )
    shutil.rmtree(bundle)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="bundle size in MiB")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (best per contender)")
    parser.add_argument("--layout", choices=["sharded", "single", "both"], default="both")
    args = parser.parse_args()
    if shutil.which("sha256sum") is None:
        sys.exit("sha256sum (coreutils) is needed for the baseline")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"bundle {args.size_mib} MiB, best of {args.repeats}, warm page cache"
    )
    layouts = ["sharded", "single"] if args.layout == "both" else [args.layout]
    with tempfile.TemporaryDirectory(prefix="kfm-bench-hashing-") as work:
        for layout in layouts:
            bench_layout(Path(work), layout, args.size_mib, args.repeats)


if __name__ == "__main__":
    main()
