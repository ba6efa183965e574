"""The database-fault scenario: publish, warm pages, stop (or freeze) PostgreSQL, probe, recover.

Used by test_database_faults.py, and runnable on its own to measure another checkout (the
"before" figures in the issue): `python tests/ops/outage_probe.py [--root /path/to/checkout]`.
Each probe records the status, the time taken and whether the body equals the warm one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.ops.harness import ROOT, AppServer, Cluster

TOPIC = "/t/lumbar-metastasis/"
ANSWERS = (
    "age_group=adult&neuro=no&cancer=known&pain=suggestive&mri_access=available&gadolinium=none&pregnant=no"
)
CDS_BODY = {
    "hook": "order-select",
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "context": {
        "userId": "Practitioner/1",
        "patientId": "p1",
        "selections": ["ServiceRequest/sr1"],
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {
                    "resource": {
                        "resourceType": "ServiceRequest",
                        "id": "sr1",
                        "status": "draft",
                        "intent": "order",
                        "subject": {"reference": "Patient/p1"},
                        "code": {"coding": [{"system": "http://loinc.org", "code": "24967-2"}]},
                    }
                }
            ],
        },
    },
    "prefetch": {"patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1960-05-01"}},
}
# (name, method, path, headers): what clinicians, programs and EHRs read.
READS = [
    ("home", "GET", "/", {}),
    ("wizard start", "GET", TOPIC, {}),
    ("wizard step (htmx)", "GET", f"{TOPIC}?age_group=adult&neuro=no", {"HX-Request": "true"}),
    ("recommendation page", "GET", f"{TOPIC}?{ANSWERS}", {}),
    ("pinned recommendation", "GET", f"{TOPIC}?{ANSWERS}&release=1", {}),
    ("print view", "GET", f"{TOPIC}print/?{ANSWERS}", {}),
    ("feedback form", "GET", f"{TOPIC}feedback/?{ANSWERS}&release=1", {}),
    ("API topics", "GET", "/api/v1/topics/", {}),
    ("API topic", "GET", "/api/v1/topics/lumbar-metastasis/", {}),
    ("API recommendation", "GET", f"/api/v1/topics/lumbar-metastasis/recommendation?{ANSWERS}", {}),
    ("CDS discovery", "GET", "/cds-services", {}),
    ("CDS order-select", "POST", "/cds-services/imaging-advisor", {}),
]
_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
# Per request by design: the CSRF token, CSP nonces, a card's uuid, a feedback form's submission id.
_VOLATILE = re.compile(
    rb'(name="csrfmiddlewaretoken" value="|nonce="|"X-CSRFToken": "|"uuid": "'
    rb'|name="submission" value=")[^"]+"'
)


@dataclass
class Probe:
    name: str
    status: int | str
    seconds: float
    same: bool | None = None


@dataclass
class Report:
    phase: str
    probes: list[Probe] = field(default_factory=list)

    def by_name(self) -> dict[str, Probe]:
        return {p.name: p for p in self.probes}

    def text(self) -> str:
        lines = [f"-- {self.phase}"]
        for p in self.probes:
            same = "" if p.same is None else (" same body" if p.same else " DIFFERENT body")
            lines.append(f"   {p.name:<24} {p.status!s:>5} {p.seconds * 1000:>8.0f} ms{same}")
        return "\n".join(lines)


def _stable(body: bytes) -> bytes:
    """The body without what differs on every response (CSRF token, CSP nonce, card uuids)."""
    return _VOLATILE.sub(b"", body)


class Probing:
    def __init__(self, server: AppServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.warm: dict[str, bytes] = {}

    def _call(
        self, method: str, path: str, headers: dict[str, str], **kwargs
    ) -> tuple[int | str, bytes, float]:
        started = time.monotonic()
        try:
            if method == "POST" and path.startswith("/cds-services"):
                kwargs.setdefault("json", CDS_BODY)
            response = self.session.request(
                method, self.server.base + path, headers=headers, timeout=60, allow_redirects=False, **kwargs
            )
            return response.status_code, response.content, time.monotonic() - started
        except requests.RequestException as error:
            return type(error).__name__, b"", time.monotonic() - started

    def reads(self, phase: str, *, compare: bool) -> Report:
        report = Report(phase)
        for name, method, path, headers in READS:
            status, body, seconds = self._call(method, path, headers)
            if not compare:
                self.warm[name] = _stable(body)
            same = (_stable(body) == self.warm.get(name)) if compare else None
            report.probes.append(Probe(name, status, seconds, same))
        return report

    def probe(
        self, report: Report, name: str, method: str, path: str, headers: dict | None = None, **kwargs
    ) -> Probe:
        status, _, seconds = self._call(method, path, headers or {}, **kwargs)
        probe = Probe(name, status, seconds)
        report.probes.append(probe)
        return probe

    def feedback(self, report: Report, headers: dict | None = None) -> Probe:
        _status, body, _ = self._call("GET", f"{TOPIC}feedback/?{ANSWERS}&release=1", {})
        token = _TOKEN.search(body.decode(errors="replace"))
        answers = dict(pair.split("=") for pair in ANSWERS.split("&"))
        data = {**answers, "release": "1", "reason": "other", "comment": ""}
        data["csrfmiddlewaretoken"] = token.group(1) if token else ""
        # The CSRF cookie is Secure (production settings) and this is plain HTTP: send it by hand.
        cookies = {cookie.name: cookie.value for cookie in self.session.cookies}
        path = f"{TOPIC}feedback/"
        return self.probe(report, "feedback post", "POST", path, headers, data=data, cookies=cookies)

    def health(self, report: Report) -> None:
        self.probe(report, "healthz", "GET", "/healthz")
        self.probe(report, "healthz HEAD", "HEAD", "/healthz")
        self.probe(report, "readyz", "GET", "/readyz")


def run(
    *, root: Path = ROOT, freeze: bool = False, settle: float = 1.5
) -> tuple[list[Report], AppServer, Cluster]:
    """The whole scenario; returns the reports and the (still running) server and cluster."""
    cluster = Cluster()
    server = AppServer(
        database_url=cluster.url,
        root=root,
        RELEASE_CHECK_SECONDS="0.2",
        DB_RETRY_SECONDS="1",
        DB_CONNECT_TIMEOUT="2",
        USAGE_FLUSH_EVERY="1000",
        READINESS_PROBE_SECONDS="0.5",
    )
    server.prepare()
    server.start()
    probing = Probing(server)
    reports = []
    warm = probing.reads("database up (warm)", compare=False)
    probing.health(warm)
    reports.append(warm)
    if freeze:
        cluster.freeze()
    else:
        cluster.stop()
    time.sleep(settle)  # past RELEASE_CHECK_SECONDS: every read now asks the database first
    down = probing.reads("database " + ("frozen (SIGSTOP)" if freeze else "stopped"), compare=True)
    probing.health(down)
    probing.feedback(down)
    reports.append(down)
    if freeze:
        cluster.thaw()
    else:
        cluster.start()
    time.sleep(settle)
    back = probing.reads("database back", compare=True)
    probing.health(back)
    probing.feedback(back)
    reports.append(back)
    return reports, server, cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to serve")
    arguments = parser.parse_args()
    for freeze in (False, True):
        reports, server, cluster = run(root=arguments.root, freeze=freeze)
        try:
            for report in reports:
                print(report.text())
            stored = cluster.query("select count(*) from decisions_feedback")
            print(f"   feedback rows stored: {stored}")
            lines = [line for line in server.log_text().splitlines() if "database" in line.lower()]
            print("   log lines about the database:", len(lines))
            for line in lines[:5]:
                print("     ", line[:160])
        finally:
            server.destroy()
            cluster.destroy()
        print(json.dumps({"freeze": freeze}))


if __name__ == "__main__":
    main()
