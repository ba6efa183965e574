"""One feedback limit across processes: two gunicorn servers sharing Redis (REDIS_URL), as behind a
load balancer, and the client address read from X-Forwarded-For only behind a trusted proxy."""

import os
import secrets
import socket
import tempfile
from pathlib import Path

import pytest

from tests.ops.harness import AppServer
from tests.ops.outage_probe import Probing, Report

REDIS = ("127.0.0.1", 6379)


def redis_is_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not redis_is_up() and os.environ.get("CI") != "true", reason="Redis is not running on 127.0.0.1:6379"
)


@pytest.fixture(scope="module")
def two_servers():
    database = Path(tempfile.mkdtemp(prefix="imaging-advisor-rate-")) / "db.sqlite3"
    shared = {
        "SECRET_KEY": secrets.token_urlsafe(50),  # the same in both: the hashed client keys match
        "REDIS_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0",
        "FEEDBACK_RATE_LIMIT": "5",
        "TRUSTED_PROXY_COUNT": "1",
    }
    servers = [AppServer(database_url=f"sqlite:///{database}", **shared) for _ in range(2)]
    servers[0].prepare()  # migrate, publish and collect static files once for both
    servers[1].env["STATIC_ROOT"] = servers[0].env["STATIC_ROOT"]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.destroy()


def posts(servers, count: int, forwarded_for: str) -> list[int]:
    """`count` feedback posts from one client, alternating between the servers."""
    clients = [Probing(server) for server in servers]
    report = Report("posts")
    headers = {"X-Forwarded-For": forwarded_for}
    return [clients[n % 2].feedback(report, headers).status for n in range(count)]


def test_two_servers_sharing_redis_let_one_client_post_the_limit_and_no_more(two_servers):
    statuses = posts(two_servers, 10, "203.0.113.10")

    assert statuses == [200] * 5 + [429] * 5


def test_behind_the_proxy_each_client_has_its_own_limit(two_servers):
    assert posts(two_servers, 6, "203.0.113.20") == [200] * 5 + [429]

    # Another client behind the same proxy (the same REMOTE_ADDR) is not held back...
    assert posts(two_servers, 1, "203.0.113.21") == [200]
    # ...and a client cannot escape the limit by adding addresses of its own in front: only the
    # address the trusted proxy appended (the last one) counts.
    assert posts(two_servers, 1, "198.51.100.1, 203.0.113.20") == [429]
