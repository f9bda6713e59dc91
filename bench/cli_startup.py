"""Start-up time of the ``kfm`` command line against ``python -c "import typer, rich"``.

Usage::

    .venv/bin/python bench/cli_startup.py [--repeats 15]

Builds a small workspace in a temporary directory (``kfm init``: policy, regions, root and
pipeline keys, signed roster, an empty ledger and registry), then times, as whole processes and
interleaved round by round so machine load hits every contender alike:

- baseline: ``python -c "import typer, rich"`` (the two libraries every kfm command needs);
- ``kfm --help``;
- ``kfm status`` on the workspace (reads kfm.toml, verifies the roster, replays the ledger);
- ``kfm ledger show`` on the workspace.

Prints the median and minimum seconds of each and the ratio of its median to the baseline's
median. Target (issue "starts fast"): each kfm command within 3x the baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 3.0
KFM = str(Path(sys.executable).with_name("kfm"))


def run(command: list[str], env: dict[str, str]) -> float:
    """Wall-clock seconds of one run of ``command`` (which must succeed)."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kfm-bench-cli-") as tmp:
        workspace = Path(tmp) / "ws"
        env = dict(
            os.environ,
            KFM_WORKSPACE=str(workspace),
            KFM_HOME=str(Path(tmp) / "home"),
            KFM_ROOT_PASSPHRASE="bench-root",
            KFM_PIPELINE_PASSPHRASE="bench-pipeline",
        )
        subprocess.run(
            [
                KFM,
                "init",
                "--root-passphrase-env",
                "KFM_ROOT_PASSPHRASE",
                "--pipeline-passphrase-env",
                "KFM_PIPELINE_PASSPHRASE",
            ],  # fmt: skip
            env=env,
            check=True,
            capture_output=True,
        )
        contenders = {
            'python -c "import typer, rich"': [sys.executable, "-c", "import typer, rich"],
            "kfm --help": [KFM, "--help"],
            "kfm status": [KFM, "status"],
            "kfm ledger show": [KFM, "ledger", "show"],
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for command in contenders.values():  # warm the page cache once
            run(command, env)
        for _ in range(args.repeats):
            for name, command in contenders.items():
                times[name].append(run(command, env))
    load = os.getloadavg()[0]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {load:.2f}, {args.repeats} rounds"
    )
    base = statistics.median(times['python -c "import typer, rich"'])
    print(f"{'command':<34}{'median s':>10}{'min s':>10}{'x baseline':>12}  target <= 3x")
    for name, values in times.items():
        median = statistics.median(values)
        ratio = median / base
        verdict = (
            "" if name.startswith("python") else ("met" if ratio <= TARGET_RATIO else "missed")
        )
        print(f"{name:<34}{median:>10.3f}{min(values):>10.3f}{ratio:>11.2f}x  {verdict}")


if __name__ == "__main__":
    main()
