"""Fault recovery times: runs tests/faults/test_cluster_faults.py (2 API processes + 2 workers on PostgreSQL and a
private redis-server without persistence) `--rounds` times and prints each scenario's recovery figures as JSON:
min / median / max over the rounds, next to the bound the settings give.

    python bench/bench_faults.py [--rounds 3]

Needs PostgreSQL on 127.0.0.1:5432 (trust) and redis-server on PATH. Scenarios and the figures they report:
- worker_sigkill: seconds from the SIGKILL until every run of the cluster is terminal (bound: lease + reaper);
- api_sigkill_4_streams: seconds until the user holds 4 streams again on the other server (bound: stream lease);
- redis_outage_0.2s / _3.0s: seconds from Redis's return until every run, queued, running and started during
  the outage, has ended (bound: requeue + reaper + the runs' own length).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = "tests/faults/test_cluster_faults.py"


def one_round(report: Path) -> None:
    env = {**os.environ, "RUNPLANE_TEST_DATABASE": "postgres", "RUNPLANE_FAULTS_REPORT": str(report)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", SUITE, "-q", "-x", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-2000:])
        raise SystemExit(f"the fault suite failed (exit {done.returncode})")


def summarize(lines: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    figures: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in lines:
        for name, value in line.items():
            if name != "scenario" and isinstance(value, int | float):
                figures[str(line["scenario"])][name].append(float(value))
    return {
        scenario: {
            name: (
                values[0]
                if name == "bound_s"
                else {"min": min(values), "median": statistics.median(values), "max": max(values)}
            )
            for name, values in named.items()
        }
        for scenario, named in figures.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "faults.jsonl"
        for _ in range(args.rounds):
            one_round(report)
        lines = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    print(json.dumps({"rounds": args.rounds, "scenarios": summarize(lines)}, indent=2))


if __name__ == "__main__":
    main()
