"""CDS Hooks benchmark: p50/p99 of a hook call at 20 concurrent clients, JWT verification on.

Starts gunicorn with production settings on 127.0.0.1 (one worker per core), trusts a key made
for the run, and drives `POST /cds-services/imaging-advisor` with wrk: an order-select call shaped
like the CDS Hooks sandbox's PAMA requests (a CPT-coded lumbar MRI with SNOMED CT reason codes,
the patient and their conditions prefetched). Every call carries a fresh ES256 JWT (signed before
the run: a replayed jti would be refused), so each one pays for the signature check, the replay
check and the consultation record, as in production.

BENCH_DATABASE_URL picks the database (default: a throwaway SQLite file; PostgreSQL in production).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from run import ensure_wrk, free_port, wait_until_ready  # bench/run.py, beside this file

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DURATION = int(os.environ.get("BENCH_CDS_SECONDS", "10"))
CLIENTS = 20
ISSUER = "https://bench-ehr.example.org"
CPT = "http://www.ama-assn.org/go/cpt"
# The order-select service (its own id since issue 18; the older shared id answers the same).
PATH = os.environ.get("BENCH_CDS_PATH", "/cds-services/imaging-advisor-order-select")
# "sandbox": a lumbar MRI for low back pain with cancer on the record (more information needed);
# "mscc-three-regions": a whole spine ordered as three regional CPT orders for cancer with cord
# compression (ICD-10-CM), read as one order and answered with the emergency card.
SCENARIO = os.environ.get("BENCH_CDS_SCENARIO", "sandbox")
MAX_RATE = 2000  # tokens made per second of the run: more than the service can answer here


def hook_body() -> str:
    snomed = "http://snomed.info/sct"
    order = {
        "resourceType": "ServiceRequest",
        "id": "bench-order",
        "status": "draft",
        "intent": "plan",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}], "text": "MRI"},
        "subject": {"reference": "Patient/bench-patient"},
        "reasonCode": [{"coding": [{"system": snomed, "code": "279039007"}], "text": "Low back pain"}],
    }
    active = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    }
    conditions = [
        {
            "resourceType": "Condition",
            "id": f"c{index}",
            "subject": {"reference": "Patient/bench-patient"},
            "clinicalStatus": active,
            "code": {"coding": [{"system": snomed, "code": code}]},
        }
        for index, code in enumerate(["128462008", "38341003", "44054006", "195967001"])
    ]
    empty = {"resourceType": "Bundle", "type": "searchset"}
    orders = [order]
    if SCENARIO == "mscc-three-regions":
        icd = "http://hl7.org/fhir/sid/icd-10-cm"
        orders = [
            order
            | {
                "id": f"bench-order-{i}",
                "code": {"coding": [{"system": CPT, "code": code}]},
                "reasonCode": [],
            }
            for i, code in enumerate(("72141", "72146", "72148"), 1)
        ]
        for condition, code in zip(conditions, ("C50.911", "G95.20", "I10", "E11.9"), strict=True):
            condition["code"] = {"coding": [{"system": icd, "code": code}]}
    return json.dumps(
        {
            "hook": "order-select",
            "hookInstance": str(uuid.uuid4()),
            "context": {
                "userId": "Practitioner/bench",
                "patientId": "bench-patient",
                "selections": [f"ServiceRequest/{orders[0]['id']}"],
                "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]},
            },
            "prefetch": {
                "patient": {"resourceType": "Patient", "id": "bench-patient", "birthDate": "1958-04-02"},
                "conditions": {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [{"resource": c} for c in conditions],
                },
                "observations": empty,
                "observation_values": empty,
            },
        }
    )


def lua_script(tokens: list[str], body: str, threads: int) -> str:
    """A wrk script that gives every request its own token (each wrk thread takes its own slice)."""
    per_thread = len(tokens) // threads
    token_table = ",\n".join(json.dumps(t) for t in tokens)
    return f"""
local tokens = {{
{token_table}
}}
local body = {json.dumps(body)}
local counter = 0
local next_id = 0
local threads_list = {{}}
statuses = {{}}
function setup(thread)
  thread:set("offset", next_id * {per_thread})
  next_id = next_id + 1
  table.insert(threads_list, thread)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 and statuses[status] == 1 then
    io.write(string.format("first %d: %s\\n", status, string.sub(body, 1, 300)))
  end
end
function done(summary, latency, requests)
  -- What the errors were (a 503 from the database gate is not a 401 from a spent token).
  local total = {{}}
  for _, thread in ipairs(threads_list) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d: %d\\n", status, n)) end
end
function request()
  counter = counter + 1
  local token = tokens[offset + counter] or tokens[1]  -- ran out: a replay, counted as an error
  return wrk.format("POST", "{PATH}", {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token
  }}, body)
end
"""


def to_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="imaging-advisor-cds-bench-"))
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "bench-1", "use": "sig"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
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
        "CDS_HOOKS_VERIFY_JWT": "true",
        "CDS_HOOKS_TRUSTED_ISSUERS": json.dumps({ISSUER: {"keys": [jwk]}}),
        "CDS_HOOKS_PUBLIC_BASE_URL": base,
        # Every verified hook call needs the database (replay check, consultation record): at the
        # default DB_BOUND_CONCURRENCY (4 a process) 20 clients on 2 workers get mostly 503s at
        # once, which measures the gate, not the service. One per thread measures the service.
        "DB_BOUND_CONCURRENCY": os.environ.get("BENCH_DB_BOUND_CONCURRENCY", "8"),
    }
    manage = [PYTHON, str(ROOT / "manage.py")]
    for args in (["migrate", "--noinput", "-v0"], ["kb_bootstrap"]):
        subprocess.run(manage + args, env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    now = int(time.time())
    count = MAX_RATE * (DURATION + 2)
    tokens = [
        jwt.encode(
            {"iss": ISSUER, "aud": base + PATH, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex},
            key,
            algorithm="ES256",
            headers={"kid": "bench-1"},
        )
        for _ in range(count)
    ]
    body = hook_body()
    script = workdir / "cds.lua"
    threads = 2
    script.write_text(lua_script(tokens, body, threads))

    workers = os.environ.get("BENCH_WORKERS", str(os.cpu_count() or 2))
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "imaging_advisor.wsgi", "-b", f"127.0.0.1:{port}", "-w", workers],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        # Then until every worker is warm (/readyz, as a load balancer waits): each worker renders
        # every state of the topic in the background at start (825 since revision 3, seconds of
        # CPU), which would otherwise share the two cores with the calls measured.
        wait_until_ready(base, int(workers))
        # One call first: it must give a card (a benchmark of 401s or empty answers measures nothing).
        warm = jwt.encode(
            {
                "iss": ISSUER,
                "aud": base + PATH,
                "iat": now,
                "exp": now + 300,
                "jti": f"warm-up-{uuid.uuid4().hex}",
            },
            key,
            algorithm="ES256",
            headers={"kid": "bench-1"},
        )
        request = urllib.request.Request(
            base + PATH,
            data=body.encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {warm}"},
        )
        with urllib.request.urlopen(request) as response:
            cards = json.loads(response.read())["cards"]
            assert response.status == 200 and cards, "the warm-up call gave no card"
        output = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{CLIENTS}",
                f"-d{DURATION}s",
                "--latency",
                "-s",
                str(script),
                base + PATH,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        shutil.rmtree(workdir, ignore_errors=True)

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = dict(re.findall(r"\s(50|99)(?:\.0+)?%\s+([\d.]+\w+)", output))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    database = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
    print(
        f"\nCDS Hooks call ({SCENARIO}, order-select, JWT verified, consultation recorded; {database}): "
        f"gunicorn -w {workers}, wrk -t{threads} -c{CLIENTS} -d{DURATION}s, {os.cpu_count()} cores"
    )
    print(f"{'target':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    p50, p99 = to_ms(latency["50"]), to_ms(latency["99"])
    print(f"{'CDS Hooks call':<22} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {errors:>7}")
    print("  " + ", ".join(sorted(re.findall(r"status \d+: \d+", output))))
    if os.environ.get("BENCH_VERBOSE"):
        print(output)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
