"""gunicorn's access log (gunicorn.conf.py) keeps paths, never the answers in query strings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from tests.ops.harness import ROOT, free_port


def test_the_access_log_records_the_path_without_the_query_string_or_the_referrer(tmp_path):
    port = free_port()
    log = tmp_path / "access.log"
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "access-log-test-only-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    command = [sys.executable, "-m", "gunicorn", "imaging_advisor.wsgi", "-w", "1"]
    server = subprocess.Popen(
        [*command, "-b", f"127.0.0.1:{port}", "--access-logfile", str(log)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/healthz?pregnant=yes&cancer=known",
            headers={"Referer": f"http://127.0.0.1:{port}/t/lumbar-metastasis/?pregnant=yes"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        while "healthz" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)

    text = log.read_text()
    assert '"GET /healthz HTTP/1.1" 200' in text
    assert "pregnant" not in text and "cancer" not in text and "?" not in text
