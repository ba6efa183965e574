"""Load benchmark: gunicorn with production settings on 127.0.0.1, driven by wrk.

Prints requests/s and p50/p99 latency for a trivial view, a static file, a wizard step (htmx
fragment), a full recommendation page, the API recommendation and a browser revalidating the
recommendation page (If-None-Match: 304), then each one's throughput as a ratio of the static
file's, all measured in this one run; then a mixed load that cycles through every reachable
wizard state of the shipped topic (full page, htmx fragment and API recommendation of each) at
50 connections for 30 s.

Before the load, a fresh process (`--cache-probe`, Django's test client, no network) waits until
/readyz says ready (as a load balancer would; the warm-up renders every state meanwhile), then
serves every reachable state once as a page and as an htmx step (first pass), then again (warm),
and reports the first/warm throughput ratio, how long it took to be ready, and the bytes each
cached state holds, compressed as stored against the raw rendering. The same probe with WARM_UP=false
shows what a fresh process without the warm-up does.

Targets (issue 21): recommendation page and htmx step >= 0.9 of static, fresh process over every
state >= 0.8 of warm, 304 on revalidation, zero errors anywhere, the mixed load included.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
DURATION = os.environ.get("BENCH_DURATION", "10s")
# Each target is measured in this many rounds, taken in turn (static, page, step, …, static, …),
# so that a change in the machine's other load falls on every target alike.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "32")
ANSWERS = (
    "age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available&gadolinium=none&pregnant=no"
)
MIXED_DURATION = os.environ.get("BENCH_MIXED_DURATION", "30s")
MIXED_CONNECTIONS = os.environ.get("BENCH_MIXED_CONNECTIONS", "50")
SHIPPED = ROOT / "decisions" / "data" / "lumbar-metastasis.json"
# Every browser sends this (htmx's requests too), so every target and the mixed load do: pages are
# cached compressed and sent as stored, and a client without it pays for decompressing.
STEP = "age_group=adult&neuro=no"
BROWSER = {"Accept-Encoding": "gzip, deflate, br"}
RECOMMENDATION = f"/t/lumbar-metastasis/?{ANSWERS}"
TARGETS = [
    ("trivial view", "/healthz", BROWSER),
    ("static file", "/static/css/app.css", BROWSER),
    ("wizard step (htmx)", f"/t/lumbar-metastasis/?{STEP}", {**BROWSER, "HX-Request": "true"}),
    ("recommendation page", RECOMMENDATION, BROWSER),
    ("API recommendation", f"/api/v1/topics/lumbar-metastasis/recommendation?{ANSWERS}", BROWSER),
]
REVALIDATION = "revalidation (304)"


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it with apt-get", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is not installed and could not be installed (apt-get install wrk)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"server did not start: {url}")


def wait_until_ready(base: str, workers: int) -> float:
    """Seconds until /readyz answers 200 a few times in a row (every worker warm, most likely)."""
    started = time.monotonic()
    in_a_row = 0
    while in_a_row < 3 * workers:
        if time.monotonic() - started > 120:
            sys.exit("server not ready after 120 s")
        try:
            urllib.request.urlopen(base + "/readyz", timeout=5)
            in_a_row += 1
        except OSError:
            in_a_row = 0
            time.sleep(0.05)
    return time.monotonic() - started


def etag_of(url: str, headers: dict[str, str]) -> str:
    """The page's ETag, after checking that sending it back answers 304."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
        etag = response.headers["ETag"]
    try:
        urllib.request.urlopen(urllib.request.Request(url, headers={**headers, "If-None-Match": etag}))
    except urllib.error.HTTPError as answer:
        if answer.code == 304:
            return str(etag)
        raise
    sys.exit(f"{url}: If-None-Match did not answer 304")


def mixed_paths() -> list[tuple[str, dict[str, str]]]:
    """Every wizard state a clinician can reach in the shipped topic, as a page, an htmx step and
    an API call (the engine walks the questions; no database needed)."""
    import json

    from decisions import engine
    from decisions.clinician.links import wizard_query
    from decisions.engine import answer_space

    document = json.loads(SHIPPED.read_text(encoding="utf-8"))
    snapshot = engine.build_snapshot(document, release_version=1, published_at="2026-01-01T00:00:00+00:00")
    key = snapshot.topic_key
    paths: list[tuple[str, dict[str, str]]] = []
    for answers in answer_space.reachable_states(snapshot) or []:
        query = wizard_query(answers)  # as the app's links and its form send them
        paths.append((f"/t/{key}/?{query}", BROWSER))
        paths.append((f"/t/{key}/?{query}", {**BROWSER, "HX-Request": "true"}))
        paths.append((f"/api/v1/topics/{key}/recommendation?{query}", BROWSER))
    return paths


def mixed_script(paths: list[tuple[str, dict[str, str]]], directory: Path) -> Path:
    """A wrk Lua script sending the paths in turn (each thread starts at a different place)."""

    def lua(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    rows = ",\n".join(
        "{" + lua(path) + ", {" + ", ".join(f"[{lua(k)}] = {lua(v)}" for k, v in headers.items()) + "}}"
        for path, headers in paths
    )
    script = directory / "mixed.lua"
    script.write_text(
        f"local paths = {{\n{rows}\n}}\n"
        "local i = 0\n"
        "setup = function(thread) thread:set('offset', math.random(#paths)) end\n"
        "init = function() i = tonumber(offset) or 0 end\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        "  return wrk.format('GET', paths[i][1], paths[i][2])\n"
        "end\n"
    )
    return script


def run_wrk(
    wrk: str,
    url: str,
    headers: dict[str, str],
    *,
    connections: str = CONNECTIONS,
    duration: str = DURATION,
    script: Path | None = None,
) -> dict[str, float]:
    command = [wrk, "-t2", f"-c{connections}", f"-d{duration}", "--latency", url]
    if script is not None:
        command += ["-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = dict(re.findall(r"\s(50|99)(?:\.0+)?%\s+([\d.]+\w+)", output))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return {"rps": rps, "p50": to_ms(latency["50"]), "p99": to_ms(latency["99"]), "errors": errors}


def combined(rounds: list[dict[str, float]]) -> dict[str, float]:
    """One target's rounds: median throughput, median p50, worst p99, all errors.

    The median, not the mean: this machine is shared, and a stall elsewhere that falls on one
    round of one target (seen: a static-file round at a fifth of the others) would otherwise
    decide that target's ratio. Every target is measured the same way.
    """
    return {
        "rps": statistics.median(r["rps"] for r in rounds),
        "p50": statistics.median(r["p50"] for r in rounds),
        "p99": max(r["p99"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
    }


def to_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def cache_probe() -> None:
    """Run in a fresh process: cold and warm passes over every reachable state; prints JSON."""
    import json

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imaging_advisor.settings")
    django.setup()
    from django.test import Client

    from decisions.clinician.links import wizard_query
    from decisions.clinician.views import _renderings
    from decisions.engine import answer_space
    from decisions.knowledge.served import latest_snapshots
    from decisions.web import inprocess

    started = time.perf_counter()
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    while client.get("/readyz").status_code != 200:  # what a load balancer waits for
        time.sleep(0.01)
    ready_seconds = time.perf_counter() - started
    snapshot = next(s for s in latest_snapshots() if s.topic_key == "lumbar-metastasis")
    states = answer_space.reachable_states(snapshot) or []
    # As the app's own links and its form send them: a choice of several answers is the parameter
    # repeated (`contrast_risks=kidney&contrast_risks=dialysis`), which is what the warm-up renders.
    urls = [f"/t/{snapshot.topic_key}/?{wizard_query(answers)}" for answers in states]
    requests = [(url, headers) for url in urls for headers in ({}, {"HX-Request": "true"})]

    def one_pass(extra: dict[str, str]) -> float:
        started = time.perf_counter()
        for url, headers in requests:
            response = client.get(url, headers={**headers, **extra})
            assert response.status_code == 200, (url, response.status_code)
        return len(requests) / (time.perf_counter() - started)

    cold = one_pass({})
    warm = one_pass({})
    warm_identity = one_pass({"Accept-Encoding": "identity"})
    entries = list(_renderings._items.values())
    raw = sum(len(e.page.raw()) + len(e.fragment.raw()) for e in entries)
    stored = sum(e.page.stored_bytes + e.fragment.stored_bytes for e in entries)
    print(
        json.dumps(
            {
                "states": len(states),
                "entries": len(entries),
                "raw_per_entry": raw / len(entries),
                "stored_per_entry": stored / len(entries),
                "encodings": list(inprocess.ENCODINGS),
                "cold_rps": cold,
                "warm_rps": warm,
                "warm_identity_rps": warm_identity,
                "cap": _renderings.size,
                "ready_seconds": ready_seconds,
            }
        )
    )


def run_cache_probe(env: dict[str, str]) -> dict[str, Any]:
    import json

    output = subprocess.run(
        [PYTHON, str(Path(__file__).resolve()), "--cache-probe"],
        env={**env, "ALLOWED_HOSTS": "127.0.0.1"},
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def print_cache_probe(probe: dict[str, Any]) -> None:
    raw, stored, cap = probe["raw_per_entry"], probe["stored_per_entry"], probe["cap"]
    print(
        f"\nRender cache: {probe['entries']} cached states ({probe['states']} reachable), "
        f"each a page + an htmx step, stored compressed ({'/'.join(probe['encodings'])})"
    )
    print(
        f"bytes per cached state: raw {raw:,.0f}, stored {stored:,.0f} ({stored / raw:.2f} of raw); "
        f"at the {cap:,}-entry cap: {raw * cap / 1e6:,.0f} MB raw, {stored * cap / 1e6:,.0f} MB stored"
    )
    print(
        f"fresh process, every state once after /readyz says ready ({probe['ready_seconds']:.2f} s): "
        f"{probe['cold_rps']:,.0f} req/s, warm {probe['warm_rps']:,.0f} req/s "
        f"(fresh/warm {probe['cold_rps'] / probe['warm_rps']:.2f}); "
        f"warm to a client without gzip {probe['warm_identity_rps']:,.0f} req/s "
        f"({probe['warm_identity_rps'] / probe['warm_rps']:.2f} of warm)"
    )
    unwarmed = probe.get("unwarmed")
    if unwarmed:
        print(
            f"the same with WARM_UP=false: ready in {unwarmed['ready_seconds']:.2f} s, first pass "
            f"{unwarmed['cold_rps']:,.0f} req/s, warm {unwarmed['warm_rps']:,.0f} req/s "
            f"(cold/warm {unwarmed['cold_rps'] / unwarmed['warm_rps']:.2f})"
        )


def main() -> None:
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="imaging-advisor-bench-"))
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}"),
        "STATIC_ROOT": str(workdir / "static"),
        "LOG_LEVEL": "WARNING",
    }
    manage = [PYTHON, str(ROOT / "manage.py")]
    for args in (["migrate", "--noinput", "-v0"], ["kb_bootstrap"], ["collectstatic", "--noinput", "-v0"]):
        subprocess.run(manage + args, env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    probe = run_cache_probe(env)
    probe["unwarmed"] = run_cache_probe({**env, "WARM_UP": "false"})
    port = free_port()
    workers = os.environ.get("BENCH_WORKERS", str(os.cpu_count() or 2))
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "imaging_advisor.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            workers,
            "--access-logfile",
            "-" if os.environ.get("BENCH_ACCESS_LOG") else "/dev/null",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/healthz")
        ready_seconds = wait_until_ready(base, int(workers))
        for name, path, headers in TARGETS:
            request = urllib.request.Request(base + path, headers=headers)
            with urllib.request.urlopen(request) as response:  # check it answers 200
                assert response.status == 200, (name, response.status)
        revalidate = {**BROWSER, "If-None-Match": etag_of(base + RECOMMENDATION, BROWSER)}
        targets = [*TARGETS, (REVALIDATION, RECOMMENDATION, revalidate)]
        seconds = max(1, round(to_ms(DURATION) / 1000 / ROUNDS))
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in targets}
        for _ in range(ROUNDS):
            for name, path, headers in targets:
                rounds[name].append(run_wrk(wrk, base + path, headers, duration=f"{seconds}s"))
        results = {name: combined(measured) for name, measured in rounds.items()}
        paths = mixed_paths()
        mixed = run_wrk(
            wrk,
            base,
            BROWSER,
            connections=MIXED_CONNECTIONS,
            duration=MIXED_DURATION,
            script=mixed_script(paths, workdir),
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)

    static = results["static file"]["rps"]
    print(
        f"\nImaging Advisor benchmark: gunicorn -w {workers}, wrk -t2 -c{CONNECTIONS}, {ROUNDS} rounds of "
        f"{seconds} s per target taken in turn, "
        f"{os.cpu_count()} cores, all on 127.0.0.1, load average {os.getloadavg()[0]:.1f}; "
        f"ready (warm) {ready_seconds:.1f} s after start"
    )
    print(f"{'target':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs static':>10}")
    for name, r in results.items():
        print(
            f"{name:<22} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
            f"{r['errors']:>7} {r['rps'] / static:>10.2f}"
        )
    print(
        f"\nMixed load: every reachable wizard state ({len(paths) // 3} states x page, htmx step, API = "
        f"{len(paths)} URLs in turn), wrk -t2 -c{MIXED_CONNECTIONS} -d{MIXED_DURATION}"
    )
    m = mixed
    print(f"{'mixed load':<22} {m['rps']:>9.0f} {m['p50']:>8.2f} {m['p99']:>8.2f} {m['errors']:>7}")
    print_cache_probe(probe)
    page = results["recommendation page"]["rps"] / static
    step = results["wizard step (htmx)"]["rps"] / static
    fresh = probe["cold_rps"] / probe["warm_rps"]
    errors = sum(r["errors"] for r in results.values()) + mixed["errors"]
    checks = [
        (f"recommendation page >= 0.90 of static ({page:.2f})", page >= 0.9),
        (f"htmx step >= 0.90 of static ({step:.2f})", step >= 0.9),
        (f"fresh process over every state >= 0.80 of warm ({fresh:.2f})", fresh >= 0.8),
        ("304 on revalidation (checked before the load)", True),
        (f"zero errors, mixed load included ({errors})", errors == 0),
    ]
    print("\nTargets:")
    for text, met in checks:
        print(f"  {'met    ' if met else 'NOT met'} {text}")
    sys.exit(0 if all(met for _, met in checks) else 1)


if __name__ == "__main__":
    if sys.argv[1:] == ["--cache-probe"]:
        cache_probe()
    else:
        main()
