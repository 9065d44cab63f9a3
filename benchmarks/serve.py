"""Serving benchmark: latency and throughput of ``mlwright serve`` on adult, against MLflow.

Usage::

    python benchmarks/serve.py ../shared/bench/data [--model DIR] [--duration 10]
        [--results benchmarks/RESULTS.md]

Without ``--model`` a LightGBM model is trained on adult first (``mlwright train --models
lightgbm --max-trials 1``). Everything runs on this machine, over loopback:

* single-row REST ``/predict`` latency at a fixed 200 requests/s (p50, p99), measured by the
  client (keep-alive connection), prediction log on;
* the same with the prediction log off (the log's write-path cost: p50 delta), alternating
  rounds between two servers to cancel drift;
* gRPC single-row latency at 200 requests/s (ModelInfer, generated stub, one channel),
  alternating rounds with REST on the same server; then both back to back (2,000 requests a
  round), and a no-op call each (ServerLive, GET /v2/health/live) for the transports' floor;
* a 1,000-row request (p50 of 30);
* maximum single-row throughput with ``wrk`` (keep-alive, 8 connections), errors counted;
* the same throughput against ``mlflow models serve --env-manager local`` of the same
  artifact, run side by side, and the ratio.

``wrk`` (Debian package ``wrk``) is used for throughput; without it a bounded Python asyncio
client measures it (which then limits the figure on 2 cores, so it is marked).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(host, int(port), timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                connection.close()
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {timeout} s")


class Served(NamedTuple):
    """A running ``mlwright serve``: its REST and gRPC ports and its process id."""

    port: int
    grpc_port: int
    pid: int


@contextlib.contextmanager
def mlwright_server(
    model: Path, home: Path, *, log: str | None, extra: tuple[str, ...] = ()
) -> Iterator[Served]:
    """Serve ``model`` with its home in ``home`` until the block ends (SIGTERM, then kill)."""
    port, grpc_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "mlwright",
        "serve",
        str(model),
        "--port",
        str(port),
        "--grpc-port",
        str(grpc_port),
    ]
    if log is not None:
        command += ["--log", log]
    command += extra
    env = dict(os.environ, MLWRIGHT_HOME=str(home))
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/health/ready", process)
        yield Served(port, grpc_port, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def mlflow_server(model: Path, home: Path) -> Iterator[int]:
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    # mlflow runs `uvicorn` by name: the interpreter's bin folder must be on PATH.
    path = os.pathsep.join([str(mlflow.parent), os.environ.get("PATH", "")])
    env = dict(os.environ, MLWRIGHT_HOME=str(home), PATH=path)
    process = subprocess.Popen(
        [
            str(mlflow),
            "models",
            "serve",
            "-m",
            str(model),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", process, timeout=180)
        yield port
    finally:
        # mlflow starts uvicorn as a child: stop the whole session it leads.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def fixed_rate_rest(
    port: int, path: str, bodies: list[bytes], rate: float, duration: float
) -> list[float]:
    """Send requests on a fixed schedule over one keep-alive connection; latencies in ms.

    ``rate`` 0 sends back to back; an empty ``bodies`` sends GETs (a no-op call).
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    errors = 0

    def call(index: int) -> None:
        nonlocal errors
        if bodies:
            connection.request("POST", path, body=bodies[index % len(bodies)], headers=headers)
        else:
            connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        errors += response.status != 200

    latencies = _paced(call, rate, duration)
    connection.close()
    if errors:
        raise RuntimeError(f"{errors} requests failed at {rate}/s on {path}")
    return latencies


def _paced(call, rate: float, duration: float, count: int = 2000) -> list[float]:
    """Run ``call(index)`` on a fixed schedule (or back to back with rate 0); ms each."""
    latencies = []
    interval = 1.0 / rate if rate else 0.0
    start = time.perf_counter()
    for index in range(int(rate * duration) if rate else count):
        delay = start + index * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        began = time.perf_counter()
        call(index)
        latencies.append((time.perf_counter() - began) * 1000)
    return latencies


def fixed_rate_grpc(port: int, requests: list, rate: float, duration: float) -> list[float]:
    """ModelInfer on a fixed schedule (rate 0: back to back); an empty ``requests`` calls the
    no-op ServerLive instead. Latencies in ms."""
    import grpc

    from mlwright.serve._proto import grpc_predict_v2_pb2 as pb
    from mlwright.serve._proto import grpc_predict_v2_pb2_grpc as pb_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        if requests:
            stub.ModelInfer(requests[0])
            return _paced(lambda i: stub.ModelInfer(requests[i % len(requests)]), rate, duration)
        live = pb.ServerLiveRequest()
        stub.ServerLive(live)
        return _paced(lambda i: stub.ServerLive(live), rate, duration)


def grpc_requests(frame: pd.DataFrame, model_name: str) -> list:
    from mlwright.serve._proto import grpc_predict_v2_pb2 as pb

    out = []
    text = {column for column in frame.columns if not pd.api.types.is_numeric_dtype(frame[column])}
    for _, row in frame.iterrows():
        request = pb.ModelInferRequest(model_name=model_name)
        for column, value in row.items():
            tensor = request.inputs.add(name=column, shape=[1])
            if column in text:
                # An empty string is a missing category.
                tensor.datatype = "BYTES"
                tensor.contents.bytes_contents.append(b"" if pd.isna(value) else value.encode())
            else:
                tensor.datatype = "FP64"
                tensor.contents.fp64_contents.append(float(value))
        out.append(request)
    return out


def wrk_throughput(
    port: int, path: str, bodies: list[bytes], duration: float, connections: int = 8
) -> dict:
    """Maximum throughput with wrk (bodies rotated); requests/s and failures."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return python_throughput(port, path, bodies, duration, connections)
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        quoted = ",\n".join(json.dumps(body.decode()) for body in bodies)
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"local bodies = {{\n{quoted}\n}}\nlocal i = 0\n"
            "request = function()\n  i = i % #bodies + 1\n"
            f'  return wrk.format("POST", "{path}", nil, bodies[i])\nend\n'
        )
        result = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{int(duration)}s",
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    text = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), "
        r"timeout (\d+)",
        text,
    )
    failures = int(bad.group(1)) if bad else 0
    if socket_errors:
        failures += sum(int(value) for value in socket_errors.groups())
    return {
        "rps": rate,
        "failures": failures,
        "tool": "wrk",
        "connections": connections,
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
        "p50_ms": _wrk_latency_ms(text, 50),
        "p99_ms": _wrk_latency_ms(text, 99),
    }


def _wrk_latency_ms(text: str, percent: int) -> float:
    """A percentile of wrk's ``--latency`` distribution (``  99%   12.34ms``), in ms."""
    value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def python_throughput(
    port: int, path: str, bodies: list[bytes], duration: float, connections: int
) -> dict:
    import httpx

    async def worker(client: httpx.AsyncClient, stop: float, counts: list) -> None:
        index = 0
        while time.perf_counter() < stop:
            response = await client.post(
                path,
                content=bodies[index % len(bodies)],
                headers={"Content-Type": "application/json"},
            )
            counts[0 if response.status_code == 200 else 1] += 1
            index += 1

    async def run() -> dict:
        counts = [0, 0]
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
            start = time.perf_counter()
            stop = start + duration
            await asyncio.gather(*(worker(client, stop, counts) for _ in range(connections)))
            elapsed = time.perf_counter() - start
        return {
            "rps": counts[0] / elapsed,
            "failures": counts[1],
            "tool": "python-httpx",
            "connections": connections,
        }

    return asyncio.run(run())


def histogram(port: int, endpoint: str) -> dict[float, float]:
    """Cumulative bucket counts of the server's latency histogram for one endpoint."""
    text = _get(port, "/metrics")
    pattern = re.compile(
        r'mlwright_request_latency_seconds_bucket\{endpoint="'
        + re.escape(endpoint)
        + r'",le="([^"]+)"\} ([\d.e+]+)'
    )
    return {float(bound): float(count) for bound, count in pattern.findall(text)}


def server_quantile(before: dict, after: dict, q: float) -> float:
    """Quantile (ms) of the requests between two histogram scrapes, interpolated in buckets."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return float("nan")
    target = q / 100 * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= target:
            if bound == float("inf"):
                return previous_bound * 1000
            share = (target - previous_count) / max(count - previous_count, 1e-9)
            return (previous_bound + share * (bound - previous_bound)) * 1000
        previous_bound, previous_count = bound, count
    return previous_bound * 1000


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def train_adult(suite: Path, output: Path, home: Path) -> Path:
    env = dict(os.environ, MLWRIGHT_HOME=str(home))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlwright",
            "train",
            str(suite / "adult" / "train.csv"),
            "--target",
            "income",
            "--models",
            "lightgbm",
            "--max-trials",
            "1",
            "--output",
            str(output),
            "--quiet",
        ],
        check=True,
        env=env,
    )
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", type=Path, help="The benchmark suite folder (holds adult/).")
    parser.add_argument("--model", type=Path, help="A trained adult model (else trains one).")
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per measurement.")
    parser.add_argument("--rate", type=float, default=200.0, help="Fixed request rate.")
    parser.add_argument("--no-mlflow", action="store_true", help="Skip mlflow models serve.")
    parser.add_argument("--results", type=Path, help="Append the table to this Markdown file.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlwright-serve-bench-"))
    home = work / ".mlwright"
    model = args.model or train_adult(args.suite, work / "adult-model", home)
    test = pd.read_csv(args.suite / "adult" / "test.csv").drop(columns=["income"])
    rows = test.sample(200, random_state=0)
    records = json.loads(rows.to_json(orient="records"))
    singles = [json.dumps({"records": [record]}).encode() for record in records]
    big = json.dumps({"records": json.loads(test.head(1000).to_json(orient="records"))}).encode()
    figures: dict[str, object] = {}

    log_uri = f"sqlite:///{work / 'predictions.db'}"
    with (
        mlwright_server(model, home, log=log_uri) as (port, grpc_port, _),
        mlwright_server(model, home, log="none") as (port_off, _, _),
    ):
        name = json.loads(_get(port, "/models"))["default"]
        for warm in (port, port_off):
            fixed_rate_rest(warm, "/predict", singles, 500, 1.0)
        # Latency of one server under steady load, as a client sees it and inside the server.
        before = histogram(port, "predict")
        steady = fixed_rate_rest(port, "/predict", singles, args.rate, args.duration)
        after = histogram(port, "predict")
        figures["rest_server_p50_ms"] = server_quantile(before, after, 50)
        figures["rest_server_p99_ms"] = server_quantile(before, after, 99)
        figures["rest_p50_ms"] = percentile(steady, 50)
        figures["rest_p99_ms"] = percentile(steady, 99)
        # The log's cost: alternate rounds between the servers with the log on and off (so
        # that drifting machine load hits both), each round after a short unmeasured warm-up.
        on, off = [], []
        rounds = 4
        for _ in range(rounds):
            for target, sink in ((port, on), (port_off, off)):
                fixed_rate_rest(target, "/predict", singles, args.rate, 0.5)
                sink += fixed_rate_rest(
                    target, "/predict", singles, args.rate, args.duration / rounds
                )
        figures["rest_log_on_p50_ms"] = percentile(on, 50)
        figures["rest_nolog_p50_ms"] = percentile(off, 50)
        figures["rest_nolog_p99_ms"] = percentile(off, 99)
        figures["log_cost_p50_ms"] = figures["rest_log_on_p50_ms"] - figures["rest_nolog_p50_ms"]

        # gRPC against REST on the same server, alternating rounds (as for the log) so that
        # drifting machine load hits both; each client warmed up as REST was above.
        requests = grpc_requests(rows, name)
        fixed_rate_grpc(grpc_port, requests, 500, 1.0)
        grpc_latencies, rest_latencies = [], []
        grpc_before = histogram(port, "grpc_infer")
        for _ in range(rounds):
            rest_latencies += fixed_rate_rest(
                port, "/predict", singles, args.rate, args.duration / rounds
            )
            grpc_latencies += fixed_rate_grpc(
                grpc_port, requests, args.rate, args.duration / rounds
            )
        after = histogram(port, "grpc_infer")
        figures["grpc_server_p50_ms"] = server_quantile(grpc_before, after, 50)
        figures["grpc_server_p99_ms"] = server_quantile(grpc_before, after, 99)
        figures["grpc_p50_ms"] = percentile(grpc_latencies, 50)
        figures["grpc_p99_ms"] = percentile(grpc_latencies, 99)
        figures["grpc_rest_p50_ms"] = percentile(rest_latencies, 50)
        figures["grpc_rest_p99_ms"] = percentile(rest_latencies, 99)
        # Two more views of the same comparison, alternating as above: requests sent back to
        # back (the threads of both stacks stay awake), and a call that does nothing
        # (ServerLive against GET /v2/health/live), the transport's own floor.
        closed = {"grpc": [], "rest": [], "grpc_noop": [], "rest_noop": []}
        for _ in range(rounds):
            closed["rest"] += fixed_rate_rest(port, "/predict", singles, 0, 0)
            closed["grpc"] += fixed_rate_grpc(grpc_port, requests, 0, 0)
            closed["rest_noop"] += fixed_rate_rest(
                port, "/v2/health/live", [], args.rate, args.duration / rounds
            )
            closed["grpc_noop"] += fixed_rate_grpc(grpc_port, [], args.rate, args.duration / rounds)
        for key, values in closed.items():
            figures[f"{key}_closed_p50_ms" if "noop" not in key else f"{key}_p50_ms"] = percentile(
                values, 50
            )

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        big_times = []
        for _ in range(31):
            began = time.perf_counter()
            connection.request(
                "POST", "/predict", body=big, headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            big_times.append((time.perf_counter() - began) * 1000)
        connection.close()
        figures["rows1000_p50_ms"] = statistics.median(big_times[1:])

        throughput = wrk_throughput(port, "/predict", singles, args.duration)
        figures["rest_max_rps"] = throughput["rps"]
        figures["rest_max_failures"] = throughput["failures"]
        figures["load_tool"] = f"{throughput['tool']} ({throughput['connections']} connections)"
        logged = _count_log(work / "predictions.db")
        figures["logged_rows"] = logged

    if not args.no_mlflow:
        with mlflow_server(model, home) as mlflow_port:
            mlflow_bodies = [
                json.dumps({"dataframe_records": [record]}).encode() for record in records
            ]
            fixed_rate_rest(mlflow_port, "/invocations", mlflow_bodies, 100, 1.0)
            mlflow_latency = fixed_rate_rest(
                mlflow_port, "/invocations", mlflow_bodies, args.rate, min(args.duration, 5.0)
            )
            figures["mlflow_p50_ms"] = percentile(mlflow_latency, 50)
            result = wrk_throughput(mlflow_port, "/invocations", mlflow_bodies, args.duration)
            figures["mlflow_max_rps"] = result["rps"]
            figures["mlflow_failures"] = result["failures"]
        # Ours again right after, so both figures come from the same conditions.
        with mlwright_server(model, home, log=log_uri) as (port, _, _):
            fixed_rate_rest(port, "/predict", singles, 500, 1.0)
            again = wrk_throughput(port, "/predict", singles, args.duration)
        figures["rest_max_rps_side_by_side"] = again["rps"]
        figures["throughput_ratio_vs_mlflow"] = again["rps"] / figures["mlflow_max_rps"]

    table = render(figures, args)
    print(table)
    if args.results:
        with args.results.open("a", encoding="utf-8") as handle:
            handle.write(table)
    shutil.rmtree(work, ignore_errors=True)


def _get(port: int, path: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    text = connection.getresponse().read().decode()
    connection.close()
    return text


def _count_log(path: Path) -> int:
    import sqlite3

    if not path.exists():
        return 0
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    finally:
        connection.close()


def render(figures: dict, args: argparse.Namespace) -> str:
    def ms(key: str) -> str:
        return f"{figures[key]:.2f} ms" if key in figures else "-"

    command = "python benchmarks/serve.py " + " ".join(sys.argv[1:])
    lines = [
        "",
        f"## Serving (adult, LightGBM) — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{command}`; {platform.machine()}, {os.cpu_count()} cores, load generator "
        f"on the same machine; load average at the end {os.getloadavg()[0]:.1f}.",
        "",
        "| measure | figure | target |",
        "| --- | --- | --- |",
        f"| single-row REST /predict at {args.rate:.0f} req/s, p50 | {ms('rest_p50_ms')} | "
        "< 2 ms |",
        f"| single-row REST /predict at {args.rate:.0f} req/s, p99 | {ms('rest_p99_ms')} | "
        "< 10 ms |",
        f"| max single-row throughput ({figures.get('load_tool')}) | "
        f"{figures.get('rest_max_rps', 0):.0f} req/s, {figures.get('rest_max_failures')} "
        "failed | >= 1,000 req/s, 0 failed |",
        f"| 1,000-row request, p50 of 30 | {ms('rows1000_p50_ms')} | < 30 ms |",
        f"| gRPC ModelInfer single row at {args.rate:.0f} req/s, p50 / p99 | "
        f"{ms('grpc_p50_ms')} / {ms('grpc_p99_ms')} | <= REST |",
        f"| REST /predict in the same alternating rounds as gRPC, p50 / p99 | "
        f"{ms('grpc_rest_p50_ms')} / {ms('grpc_rest_p99_ms')} | |",
        f"| single row back to back (alternating rounds), p50: gRPC / REST | "
        f"{ms('grpc_closed_p50_ms')} / {ms('rest_closed_p50_ms')} | gRPC <= REST |",
        f"| no-op call at {args.rate:.0f} req/s (ServerLive / GET /v2/health/live), p50: "
        f"gRPC / REST | {ms('grpc_noop_p50_ms')} / {ms('rest_noop_p50_ms')} | |",
        f"| server-side p50 / p99 (latency histogram): REST | {ms('rest_server_p50_ms')} / "
        f"{ms('rest_server_p99_ms')} | |",
        f"| server-side p50 / p99 (latency histogram): gRPC | {ms('grpc_server_p50_ms')} / "
        f"{ms('grpc_server_p99_ms')} | <= REST |",
        f"| alternating rounds: REST p50 with the log on / off | {ms('rest_log_on_p50_ms')} / "
        f"{ms('rest_nolog_p50_ms')} | |",
        f"| prediction log write-path cost (p50 on - off) | {ms('log_cost_p50_ms')} | < 0.2 ms |",
        f"| rows in the prediction log after the run | {figures.get('logged_rows')} | every "
        "request |",
    ]
    if "mlflow_max_rps" in figures:
        lines += [
            f"| `mlflow models serve` max single-row throughput | "
            f"{figures['mlflow_max_rps']:.0f} req/s ({figures['mlflow_failures']} failed), "
            f"p50 at {args.rate:.0f} req/s {ms('mlflow_p50_ms')} | |",
            f"| mlwright max throughput, same conditions | "
            f"{figures['rest_max_rps_side_by_side']:.0f} req/s | |",
            f"| throughput ratio mlwright / mlflow | "
            f"{figures['throughput_ratio_vs_mlflow']:.1f}x | >= 2x |",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
