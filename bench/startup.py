"""Cold start: wall time of `qa --help`, `qa stats` and a one-shot `qa ask`, each a fresh process.

    .venv/bin/python bench/startup.py [--repeat 3] [--json]

A small index of the seed articles is built first (not timed) for `stats` and `ask`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, machine_facts, report

QA = [sys.executable, "-m", "qa.cli"]


def _wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("torch", "onnx-int8"):
            env = dict(os.environ, QA_INDEX_DIR=str(Path(tmp) / backend), HF_HUB_OFFLINE="1")
            subprocess.run([*QA, "index", "--backend", backend, str(REPO / "seeds")], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            commands = {
                "qa --help": [*QA, "--help"],
                "qa stats": [*QA, "stats"],
                f"qa ask (index built with {backend})": [*QA, "ask", "How much does Baghdad owe Russia?"],
            }
            for name, command in commands.items():
                if backend != "torch" and name in ("qa --help", "qa stats"):
                    continue
                times = [_wall(command, env) for _ in range(args.repeat)]
                rows.append({"command": name, "median s": statistics.median(times), "min s": min(times),
                             "max s": max(times), "runs": args.repeat})
    report("bench/startup.py: cold process start", rows, machine_facts(), args.json,
           ["Each run is a new Python process (python -m qa.cli), as a shell user or a script would start it."])


if __name__ == "__main__":
    main()
