"""The small parts: usage counts that survive a failed flush, the client address behind a proxy,
the cache-backed rate limit, the deploy check, the JSON guard and the OpenAPI answer sets."""

import logging

import pytest
from django.db import OperationalError
from django.test import RequestFactory

from decisions.clinician import usage
from decisions.clinician.models import UsageCount
from decisions.clinician.usage import UsageBuffer
from decisions.clinician.views import client_address
from decisions.knowledge import json_input
from decisions.web import checks
from decisions.web.inprocess import RateLimiter

KEY = {"topic_key": "t", "release_version": 1, "scenario_key": "s"}


def rows() -> set[tuple]:
    return set(UsageCount.objects.values_list("topic_key", "release_version", "scenario_key", "count"))


def test_the_buffer_flushes_on_its_own_clock(db):
    now = [100.0]
    buffer = UsageBuffer(flush_every=1000, max_age_seconds=60, clock=lambda: now[0])
    buffer.add(**KEY)
    now[0] += 59
    assert not buffer.due()

    now[0] += 1

    assert buffer.due()  # the timer thread would now write it, with no request needed
    assert buffer.flush()
    assert rows() == {("t", 1, "s", 1)}


def test_a_failed_flush_keeps_the_counts_and_the_next_one_writes_them(db, monkeypatch, caplog):
    now = [0.0]
    buffer = UsageBuffer(flush_every=2, max_age_seconds=60, clock=lambda: now[0])
    real_write = usage._write

    def down(key, count):
        raise OperationalError("the database is down")

    monkeypatch.setattr(usage, "_write", down)
    with caplog.at_level(logging.WARNING, logger="decisions.clinician.usage"):
        buffer.add(**KEY)
        buffer.add(**KEY)  # due by volume: the flush fails quietly
        buffer.add(**KEY)
    assert buffer.pending() == 3
    assert not UsageCount.objects.exists()
    assert "kept 2 for the next try" in caplog.text
    assert not buffer.due()  # not retried on every request: after another max_age

    monkeypatch.setattr(usage, "_write", real_write)
    now[0] += 60
    assert buffer.due()
    assert buffer.flush()

    assert rows() == {("t", 1, "s", 3)}
    assert buffer.pending() == 0


def test_an_explicit_flush_raises_and_loses_nothing(db, monkeypatch):
    buffer = UsageBuffer(flush_every=1000, max_age_seconds=60)
    buffer.add(**KEY)
    monkeypatch.setattr(usage, "_write", lambda key, count: (_ for _ in ()).throw(OperationalError("down")))

    with pytest.raises(OperationalError):
        buffer.flush()

    assert buffer.pending() == 1


def test_at_shutdown_the_counts_are_written_or_the_loss_is_logged(db, monkeypatch, caplog):
    monkeypatch.setattr(usage, "buffer", UsageBuffer(flush_every=1000, max_age_seconds=60))
    usage.buffer.add(**KEY)
    usage.flush_at_exit()
    assert rows() == {("t", 1, "s", 1)}

    usage.buffer.add(**KEY)
    monkeypatch.setattr(usage, "_write", lambda key, count: (_ for _ in ()).throw(OperationalError("down")))
    with caplog.at_level(logging.ERROR, logger="decisions.clinician.usage"):
        usage.flush_at_exit()

    assert "usage counts lost at shutdown: 1" in caplog.text


@pytest.mark.parametrize(
    ("remote", "forwarded", "config", "expected"),
    [
        ("10.0.0.1", "203.0.113.5", {}, "10.0.0.1"),  # no proxy configured: the header is ignored
        ("10.0.0.1", "203.0.113.5", {"TRUSTED_PROXY_COUNT": 1}, "203.0.113.5"),
        ("10.0.0.1", "198.51.100.9, 203.0.113.5", {"TRUSTED_PROXY_COUNT": 1}, "203.0.113.5"),
        ("10.0.0.1", "203.0.113.5, 10.0.0.7", {"TRUSTED_PROXY_COUNT": 2}, "203.0.113.5"),
        ("10.0.0.1", "203.0.113.5", {"TRUSTED_PROXY_COUNT": 2}, "10.0.0.1"),  # too few entries
        ("10.0.0.1", "203.0.113.5", {"TRUSTED_PROXIES": ["10.0.0.1"]}, "203.0.113.5"),
        ("192.0.2.8", "203.0.113.5", {"TRUSTED_PROXIES": ["10.0.0.1"]}, "192.0.2.8"),  # not via our proxy
        ("10.0.0.1", "not-an-address", {"TRUSTED_PROXY_COUNT": 1}, "10.0.0.1"),
        ("10.0.0.1", "", {"TRUSTED_PROXY_COUNT": 1}, "10.0.0.1"),
    ],
)
def test_the_client_address_is_read_from_x_forwarded_for_only_behind_trusted_proxies(
    settings, remote, forwarded, config, expected
):
    settings.TRUSTED_PROXIES = config.get("TRUSTED_PROXIES", [])
    settings.TRUSTED_PROXY_COUNT = config.get("TRUSTED_PROXY_COUNT", 0)
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request) == expected


def test_limiters_in_different_processes_share_one_count_through_the_cache():
    # Two limiters stand for two processes: the count lives in the cache, not in either of them.
    first, second = RateLimiter(limit=3, window_seconds=60), RateLimiter(limit=3, window_seconds=60)
    first.clear()
    second._generation = first._generation

    allowed = [(first if n % 2 else second).allow("203.0.113.1") for n in range(5)]

    assert allowed == [True, True, True, False, False]
    assert first.allow("203.0.113.2")


def test_a_cache_that_is_down_neither_blocks_feedback_nor_lifts_the_limit(monkeypatch, caplog):
    limiter = RateLimiter(limit=1, window_seconds=60)
    tried = []

    class Down:
        def add(self, *args, **kwargs):
            tried.append("add")
            raise ConnectionError("redis is down")

    monkeypatch.setattr("decisions.web.inprocess.caches", {"default": Down()})
    with caplog.at_level(logging.WARNING, logger="decisions.web.cache_breaker"):
        assert limiter.allow("203.0.113.1")
        assert not limiter.allow("203.0.113.1")  # counted in this process's memory meanwhile
    assert "the shared cache is unavailable" in caplog.text
    assert tried == ["add"]  # the circuit is open: the second post did not wait for the cache


def test_check_deploy_warns_when_cds_hooks_jwt_verification_is_off(settings):
    settings.DEBUG = False
    settings.CDS_HOOKS_VERIFY_JWT = False
    assert [w.id for w in checks.cds_hooks_jwt_verified()] == ["decisions.W001"]

    settings.CDS_HOOKS_VERIFY_JWT = True
    assert checks.cds_hooks_jwt_verified() == []


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"a": {"b": ["x", "y\\u0000"]}}', "a.b[1]"),
        ('{"a": [{"\\ud800": 1}]}', "a[0].\ud800"),
        ('["ok", "\\udfff"]', "[1]"),
    ],
)
def test_the_json_guard_names_the_member_with_nul_or_a_lone_surrogate(text, field):
    with pytest.raises(json_input.InvalidInput) as refused:
        json_input.check_strings(json_input.loads_guarded(text, max_depth=10))

    assert refused.value.field == field


def test_the_json_guard_measures_depth_without_recursing_and_ignores_brackets_in_strings():
    assert json_input.json_depth("[" * 100_000 + "]" * 100_000) == 100_000
    assert json_input.json_depth('{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    with pytest.raises(json_input.InvalidInput, match="nested more than 3"):
        json_input.loads_guarded("[[[[1]]]]", max_depth=3)


def test_a_body_over_the_limit_is_a_413_problem_before_anything_reads_it(client, settings):
    settings.JSON_MAX_BYTES = 100

    response = client.post("/cds-services/imaging-advisor", "x" * 101, content_type="application/json")

    assert (response.status_code, response["Content-Type"]) == (413, "application/problem+json")
    assert response.json()["field"] == "body"


def test_the_openapi_document_lists_the_answer_sets_the_api_accepts(client, published_shipped):
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/topics/{topic}/recommendation"]["get"]
    (answers,) = [p for p in operation["parameters"] if p["name"] == "answers"]
    variants = answers["schema"]["oneOf"]

    assert all(v["additionalProperties"] is False for v in variants)
    assert {"type": "object", "properties": {}, "required": [], "additionalProperties": False} in variants
    # The answers in today's keys: the probe's old `gadolinium=none` is read as `contrast_risks=none`.
    answers = dict(pair.split("=") for pair in _complete_answers().split("&"))
    answers["contrast_risks"] = answers.pop("gadolinium")
    complete = {key: {"type": "string", "enum": [value]} for key, value in answers.items()}
    assert any(v["properties"] == complete for v in variants)
    # A question with several answers is listed with each combination; retired answers are not offered.
    several = {**complete, "contrast_risks": {"type": "string", "enum": ["kidney+gad_reaction"]}}
    assert any(v["properties"] == several for v in variants)
    assert not any(v["properties"].get("gadolinium") for v in variants)
    assert not any(
        v["properties"].get("mri_access") == {"type": "string", "enum": ["not_possible"]} for v in variants
    )
    assert not any("x-unknown" in v["properties"] for v in variants)
    assert "503" in operation["responses"]


def _complete_answers() -> str:
    from tests.ops.outage_probe import ANSWERS

    return ANSWERS
