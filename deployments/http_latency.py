"""HTTP latency of the Serve application, per pattern, at 1 and 16 concurrent clients.

Deploys every shipped config (configs/PATTERN.toml) on an embedded Ray, then sends real HTTP
requests from keep-alive clients on 127.0.0.1 and prints a markdown table: p50/p99 of the HTTP
round trip, throughput, and the median orchestration time the DispatchResult reports (the rest
is HTTP, Serve's proxy and replica hops, and JSON).

    python deployments/http_latency.py [--requests 200] [--clients 1,16]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

PATTERNS = {  # pattern → the event target
    "route": "analyzer",
    "collaborative": "analyzer",
    "sequential": "collector",
    "loop": "quality_improver",
    "mixed": "analyzer",
}
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def measure(port: int, pattern: str, clients: int, total: int, out_dir: str) -> dict:
    body = json.dumps({"target": PATTERNS[pattern], "data": {"output_dir": out_dir}})

    def client(n: int) -> list[tuple[float, float]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            conn.request("POST", f"/{pattern}/v1/dispatch", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"{pattern}: HTTP {response.status}: {answer}")
            samples.append((time.perf_counter() - started, answer["duration"]))
        conn.close()
        return samples

    client(5)  # warm-up: connections, imports, caches
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = [s for batch in pool.map(client, [total // clients] * clients) for s in batch]
    wall = time.perf_counter() - started
    latencies = sorted(r[0] for r in results)
    return {
        "pattern": pattern,
        "clients": clients,
        "requests": len(latencies),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "rps": len(latencies) / wall,
        "orchestration_ms": 1000 * statistics.median(r[1] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per (pattern, clients) cell")
    parser.add_argument("--clients", default="1,16", help="comma-separated client counts")
    args = parser.parse_args()

    import ray
    from ray import serve

    from actorflow import load_config
    from actorflow.runtime.connect import private_temp_dir
    from actorflow.serve import application

    ray.init(include_dashboard=False, log_to_driver=False, _temp_dir=private_temp_dir())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run_many([
            serve.RunTarget(application(load_config(CONFIGS / f"{p}.toml")), name=p, route_prefix=f"/{p}")
            for p in PATTERNS
        ])
        print(f"{os.cpu_count()} CPUs, Ray {ray.__version__}, {args.requests} requests per row\n")
        print("| pattern | clients | p50 ms | p99 ms | req/s | orchestration p50 ms |")
        print("|---|---:|---:|---:|---:|---:|")
        with tempfile.TemporaryDirectory() as out_dir:
            for pattern in PATTERNS:
                for clients in (int(c) for c in args.clients.split(",")):
                    row = measure(port, pattern, clients, args.requests, out_dir)
                    print(f"| {pattern} | {clients} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
                          f"{row['rps']:.0f} | {row['orchestration_ms']:.1f} |", flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
