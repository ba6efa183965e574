"""Real processes for the fault tests: a throwaway PostgreSQL cluster and gunicorn serving the app.

The cluster is made with initdb in a temporary folder and listens on a free port on 127.0.0.1 (never
the shared server on 5432); as root it runs as the `postgres` OS user, since PostgreSQL refuses
to run as root. gunicorn runs with production settings (DEBUG off) from a given source tree, so
the same scenario can be measured against another checkout (see outage_probe.py).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class Cluster:
    """initdb + pg_ctl in a temporary directory; stop, start, freeze (SIGSTOP) and thaw on demand."""

    def __init__(self) -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin")
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="imaging-advisor-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"]
        )
        self.start()
        self._run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-q",
                "-c",
                "create database advisor",
            ]
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/advisor"

    def _run(self, command: list[str]) -> str:
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.dir)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.dir / "log"),
                "-w",
                "start",
            ]
        )

    def stop(self) -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def _processes(self) -> list[int]:
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True)
        return [postmaster, *(int(pid) for pid in children.stdout.split())]

    def freeze(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)

    def query(self, sql: str) -> str:
        return self._run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "advisor",
                "-tAc",
                sql,
            ]
        ).strip()

    def destroy(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.thaw()
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class AppServer:
    """gunicorn serving `root`'s code with production settings; migrate and publish first."""

    def __init__(self, *, database_url: str, root: Path = ROOT, workers: int = 1, **env: str) -> None:
        self.root = root
        self.dir = Path(tempfile.mkdtemp(prefix="imaging-advisor-app-"))
        self.port = free_port()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(root),
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "DATABASE_URL": database_url,
            "STATIC_ROOT": str(self.dir / "static"),
            "CDS_HOOKS_VERIFY_JWT": "false",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        if "REDIS_URL" not in env:
            self.env.pop("REDIS_URL", None)  # each test says whether it shares a cache
        self.workers = workers
        self.log = self.dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str, **env: str) -> str:
        done = subprocess.run(
            [sys.executable, str(self.root / "manage.py"), *args],
            env={**self.env, **env},
            cwd=self.root,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def prepare(self) -> None:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("kb_bootstrap")
        self.manage("collectstatic", "--noinput", "-v0")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "imaging_advisor.wsgi",
                    "-b",
                    f"127.0.0.1:{self.port}",
                    "-w",
                    str(self.workers),
                    "--timeout",
                    "30",
                    "--graceful-timeout",
                    "10",
                ],
                env=self.env,
                cwd=self.root,
                stdout=log,
                stderr=log,
            )
        for _ in range(200):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                self.wait_until_ready()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited:\n{self.log.read_text()}") from None
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()}")

    def wait_until_ready(self, timeout: float = 60) -> bool:
        """As a load balancer does: no traffic before /readyz says ready (releases loaded and
        warm) a few times in a row, so every worker has likely answered it; False on timeout."""
        deadline = time.monotonic() + timeout
        in_a_row = 0
        while time.monotonic() < deadline and in_a_row < 3 * self.workers:
            try:
                urllib.request.urlopen(self.base + "/readyz", timeout=5)
                in_a_row += 1
            except OSError:  # 503 (HTTPError) while warming, or no answer yet
                in_a_row = 0
                time.sleep(0.1)
        return in_a_row > 0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
