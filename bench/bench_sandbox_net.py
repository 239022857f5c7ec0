"""What a network namespace per sandbox and the egress proxy cost. Prints JSON. Needs root.

    python bench/bench_sandbox_net.py [--n 100] [--downloads 15] [--mb 10]

exec: SandboxHandle.execute("true") round trips with the sandbox in a namespace of its own (setns before bubblewrap,
proxy listener ensured) versus on the host's network, interleaved so drift hits both alike.
egress: a 10 MB download from a local stand-in for the internet (127.0.0.2, allowed for the occasion), timed by
curl inside the sandbox (`time_total`, so process start-up is not counted): through the proxy as plain HTTP
(absolute URI), through the proxy as a CONNECT tunnel (as HTTPS would go), and direct from a sandbox on the
host's network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from runplane.config import Settings
from runplane.sandboxes import SandboxHandle, SandboxLimits, netns
from runplane.sandboxes.egress import EgressGuard, GuardedSandboxBackend
from runplane.sandboxes.egress_policy import EgressPolicy

HOST = "127.0.0.2"
BENCH_UIDS = range(1_900_000, 1_900_100)  # not the default range, which a runplane on this host may fence off


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return round(ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)], 3)


def serve(root: Path, size: int) -> tuple[subprocess.Popen[bytes], int]:
    """`python -m http.server` in a process of its own (in this one it would share the GIL with the proxy)."""
    (root / "blob").write_bytes(b"x" * size)
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", HOST, "--directory", str(root)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        with contextlib.suppress(OSError):
            socket.create_connection((HOST, port), 1).close()
            return server, port
        time.sleep(0.05)
    raise RuntimeError("the download server did not start")


def backend(base: Path, namespaces: bool) -> GuardedSandboxBackend:
    return GuardedSandboxBackend(
        base,
        SandboxLimits(wall_time_seconds=120, max_output_bytes=1024 * 1024, allow_unisolated=True),
        guard=EgressGuard(Settings(sandbox_block_host_network=False)),
        uid_range=BENCH_UIDS,
        network_namespaces=namespaces,
        egress=EgressPolicy(allow_networks=(ipaddress.ip_network(f"{HOST}/32"),)),
    )


async def exec_latency(sandboxes: dict[str, SandboxHandle], n: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {name: [] for name in sandboxes}
    for iteration in range(n + 10):
        for name, sandbox in sandboxes.items():
            started = time.perf_counter()
            result = await sandbox.execute("true")
            assert result.exit_code == 0, result.output
            if iteration >= 10:
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: {"p50_ms": percentile(s, 50), "p99_ms": percentile(s, 99)} for name, s in samples.items()}


async def download(sandbox: SandboxHandle, curl_args: str, url: str) -> float:
    result = await sandbox.execute(f"curl -sS --noproxy '' -o /dev/null -w '%{{time_total}}' {curl_args} {url}")
    assert result.exit_code == 0, result.output
    return float(result.output.strip()) * 1000


async def egress(namespaced: SandboxHandle, hosted: SandboxHandle, url: str, n: int) -> dict[str, dict[str, float]]:
    proxy = "-x http://127.0.0.1:3128"
    cases = {
        "proxy http (absolute URI)": (namespaced, proxy),
        "proxy CONNECT tunnel": (namespaced, proxy + " -p"),
        "direct (host network)": (hosted, "--noproxy '*'"),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for iteration in range(n + 2):
        for name, (sandbox, args) in cases.items():
            took = await download(sandbox, args, url)
            if iteration >= 2:
                samples[name].append(took)
    return {name: {"p50_ms": percentile(s, 50), "p99_ms": percentile(s, 99)} for name, s in samples.items()}


async def main(n: int, downloads: int, mb: int) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="runplane-net-bench-", dir="/tmp"))
    base.chmod(0o711)
    (base / "www").mkdir()
    server, port = serve(base / "www", mb * 1024 * 1024)
    url = f"http://{HOST}:{port}/blob"
    backends = {"namespace+proxy": backend(base / "ns", True), "host network": backend(base / "host", False)}
    try:
        sandboxes = {name: await b.create("bench") for name, b in backends.items()}
        latency = await exec_latency(sandboxes, n)
        transfer = await egress(sandboxes["namespace+proxy"], sandboxes["host network"], url, downloads)
        direct = transfer["direct (host network)"]["p50_ms"]
        return {
            "n": n,
            "bwrap_used": (await backends["host network"].isolation()).available,
            "exec_true": latency,
            "exec_ratio_p50": round(latency["namespace+proxy"]["p50_ms"] / latency["host network"]["p50_ms"], 2),
            f"download_{mb}mb": transfer,
            "download_ratio_p50_vs_direct": {
                name: round(stats["p50_ms"] / direct, 2) for name, stats in transfer.items() if "proxy" in name
            },
        }
    finally:
        for made in backends.values():
            await made.destroy("bench")
            await made.close()
        server.kill()
        server.wait()
        netns.unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--downloads", type=int, default=15)
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    uvloop.install()  # what `runplane serve` and the worker run on
    print(json.dumps(asyncio.run(main(args.n, args.downloads, args.mb)), indent=2))
