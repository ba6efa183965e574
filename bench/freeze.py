"""A frozen database under a small clinician load: what clinicians and probes see (issue #20).

gunicorn (2 workers, production settings, gunicorn.conf.py) on a throwaway PostgreSQL cluster.
Four clients keep asking for recommendation pages (several answer sets), `/healthz`, the API and
the feedback form; meanwhile the database is frozen (SIGSTOP) for 12 s, thawed, then frozen for
35 s (longer than gunicorn's 30 s worker timeout). Reported per phase: requests, p50/p99/max
latency of clinician pages and /healthz, non-200 answers, and at the end whether every
recommendation shown was counted (usage counts are kept in memory and written later).

    .venv/bin/python bench/freeze.py            # about 90 s
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ops.harness import AppServer, Cluster  # noqa: E402

CLIENTS = 4
PAGES = [  # three complete answer sets (suspected metastasis; MSCC, MRI out of hours; MRI contraindicated)
    "/t/lumbar-metastasis/?age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available"
    "&contrast_risks=none&pregnant=no",
    "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=known&mri_access=unavailable_in_time&pregnant=no",
    "/t/lumbar-metastasis/?age_group=adult&neuro=yes&cancer=known&mri_access=contraindicated&pregnant=no",
]
OTHER = ["/healthz", "/api/v1/topics", "/readyz"]


@dataclass
class Sample:
    started: float
    path: str
    seconds: float
    status: int | str


def fetch(base: str, path: str) -> tuple[int | str, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(base + path, timeout=60) as response:
            response.read()
            status: int | str = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        status = type(error).__name__
    return status, time.monotonic() - started


def load(base: str, samples: list[Sample], stop: threading.Event, offset: int) -> None:
    paths = [*PAGES, *OTHER]
    n = offset
    while not stop.is_set():
        path = paths[n % len(paths)]
        n += 1
        started = time.monotonic()
        status, seconds = fetch(base, path)
        samples.append(Sample(started, path, seconds, status))
        time.sleep(0.02)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, samples: list[Sample], start: float, end: float) -> None:
    window = [s for s in samples if start <= s.started < end]
    for label, keep in (
        ("clinician pages", lambda s: s.path.startswith("/t/")),
        ("/healthz", lambda s: s.path == "/healthz"),
        ("/readyz", lambda s: s.path == "/readyz"),
    ):
        chosen = [s for s in window if keep(s)]
        times = [s.seconds * 1000 for s in chosen]
        statuses: dict[str, int] = {}
        for s in chosen:
            statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
        print(
            f"| {name} | {label} | {len(chosen)} | {statistics.median(times) if times else float('nan'):.0f} "
            f"| {percentile(times, 0.99):.0f} | {max(times, default=float('nan')):.0f} | {statuses} |"
        )


def main() -> None:
    cluster = Cluster()
    server = AppServer(database_url=cluster.url, workers=2, DB_CONNECT_TIMEOUT="2", USAGE_FLUSH_SECONDS="5")
    try:
        server.prepare()
        server.start()
        # Warming every state takes longer on a busy machine: load starts once every worker is ready.
        if not server.wait_until_ready(timeout=300):
            raise SystemExit("the server did not become ready in 300 s")
        samples: list[Sample] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=load, args=(server.base, samples, stop, i), daemon=True)
            for i in range(CLIENTS)
        ]
        t0 = time.monotonic()
        for thread in threads:
            thread.start()
        phases: list[tuple[str, float, float]] = []

        def phase(name: str, seconds: float) -> None:
            start = time.monotonic()
            time.sleep(seconds)
            phases.append((name, start, time.monotonic()))

        phase("database up", 8)
        cluster.freeze()
        phase("frozen 12 s", 12)
        cluster.thaw()
        phase("after thaw", 10)
        cluster.freeze()
        phase("frozen 35 s", 35)
        cluster.thaw()
        phase("after thaw (2)", 10)
        stop.set()
        for thread in threads:
            thread.join(timeout=70)
        print(f"\n{len(samples)} requests in {time.monotonic() - t0:.0f} s, {CLIENTS} clients\n")
        print("| phase | what | requests | p50 ms | p99 ms | max ms | answers |")
        print("|---|---|---|---|---|---|---|")
        for name, start, end in phases:
            report(name, samples, start, end)
        shown = {page: sum(1 for s in samples if s.path == page and s.status == 200) for page in PAGES}
        server.stop()  # flushes the usage counts kept in memory
        counted = cluster.query(
            "select string_agg(scenario_key || '=' || total, ', ') from "
            "(select scenario_key, sum(count) as total from decisions_usagecount group by scenario_key) t"
        )
        print(f"\npages shown with 200, per answer set: {list(shown.values())}; usage counted: {counted}")
        log = server.log_text()
        timeouts, errors = log.count("WORKER TIMEOUT"), log.count("Internal Server Error")
        print(f"worker timeouts in the log: {timeouts}; 500s: {errors}")
    finally:
        server.destroy()
        cluster.destroy()


if __name__ == "__main__":
    main()
