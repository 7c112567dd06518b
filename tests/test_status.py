"""/status and /status.json leak nothing by default; /healthz says whether aggregation works."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from feedhub.aggregator.lock import SchedulerLock
from feedhub.aggregator.state import Outcome, PollResult, StateStore
from feedhub.config import StatusAccess
from feedhub.errors import ConfigError
from feedhub.storage import open_storage
from tests.helpers import BOTH_BACKENDS, FrozenClock, Server, SiteFolder

SECRET_URL = "https://bob:hunter2@up.example/rss?key=SECRET"
NOW = 1_790_000_000.0


@pytest.fixture
def secret_site(site: SiteFolder, tmp_path: Path) -> SiteFolder:
    local = tmp_path / "elsewhere" / "local.xml"
    local.parent.mkdir()
    local.write_text("<rss/>")
    beside = site.root / "feeds" / "beside.xml"
    beside.parent.mkdir()
    beside.write_text("<rss/>")
    site.write_sources(
        {"id": "secret", "url": SECRET_URL},
        {"id": "local", "url": local.as_uri()},
        {"id": "beside", "url": beside.as_uri()},
    )
    state = StateStore(open_storage(site.config()).state)
    reason = f"cannot write posts to {site.posts.resolve()}: fetching {SECRET_URL} failed ({local})"
    state.source("secret", SECRET_URL, lambda: None)
    state.record("secret", Outcome(PollResult.ERROR, reason), NOW - 30, NOW + 600)
    return site


def leaked(text: str, site: SiteFolder) -> list[str]:
    secrets = ["hunter2", "bob", "SECRET", "key=", str(site.root.parent), f"pid {os.getpid()}"]
    return [secret for secret in secrets if secret in text]


@BOTH_BACKENDS
def test_status_is_redacted_by_default(secret_site: SiteFolder, serve: Callable[..., Server]) -> None:
    lock = SchedulerLock(secret_site.root / "data")
    lock.acquire(wait=False)  # this test process holds it: its pid must not show
    try:
        server = serve(secret_site.config(), clock=FrozenClock(NOW))
        page, document = server.get("/status"), server.get("/status.json")
    finally:
        lock.release()
    assert page.status == document.status == 200
    assert leaked(page.text, secret_site) == [] and leaked(document.text, secret_site) == []
    report = json.loads(document.body)
    assert report["scheduler"] == {"running": True}
    urls = {source["id"]: source["url"] for source in report["sources"]}
    assert urls == {"secret": "https://up.example/rss", "local": "…/local.xml", "beside": "feeds/beside.xml"}
    (secret,) = [source for source in report["sources"] if source["id"] == "secret"]
    assert (
        secret["reason"]
        == "cannot write posts to _posts: fetching https://up.example/rss failed (…/local.xml)"
    )
    assert "+00:00" in page.text or "+08:00" in page.text  # times carry their zone


def status_rows(page: str) -> list[tuple[str, str]]:
    """(health, source id) of each row of the sources' table, in order."""
    return re.findall(r'<tr class="([a-z-]+)">\s*<td><a [^>]*>([a-z0-9-]+)</a>', page)


def test_the_status_page_sums_up_and_lists_failing_sources_first(
    site: SiteFolder, serve: Callable[..., Server]
) -> None:
    site.write_sources(
        {"id": "a-fine", "url": "https://up.example/a"},
        {"id": "b-broken", "url": "https://up.example/b"},
        {"id": "c-new", "url": "https://up.example/c"},
        {"id": "d-off", "url": "https://up.example/d", "enabled": False},
        {"id": "e-304", "url": "https://up.example/e"},
    )
    state = StateStore(open_storage(site.config()).state)
    for source, result in (("a-fine", PollResult.NEW), ("b-broken", PollResult.ERROR), ("e-304", None)):
        state.source(source, f"https://up.example/{source[0]}", lambda: None)
        outcome = Outcome(
            result or PollResult.NOT_MODIFIED, "timed out" if result is PollResult.ERROR else None
        )
        state.record(source, outcome, NOW - 30, NOW + 600)
    server = serve(site.config(language="zh-CN"), clock=FrozenClock(NOW))
    page = server.get("/status").text
    summary = '<p class="summary"><span class="failing">1 个失败</span> · <span class="never-polled">'
    assert summary + "1 个尚未轮询</span>" in page
    assert '<span class="disabled">1 个已停用</span> · <span class="ok">2 个正常</span></p>' in page
    assert status_rows(page) == [
        ("failing", "b-broken"),
        ("never-polled", "c-new"),
        ("disabled", "d-off"),
        ("ok", "a-fine"),
        ("ok", "e-304"),
    ]
    assert "有新条目" in page and "未修改（304）" in page and "错误" in page and ">new<" not in page
    by_source = server.get("/status?sort=source").text
    assert [name for _, name in status_rows(by_source)] == [
        "a-fine", "b-broken", "c-new", "d-off", "e-304"
    ]  # fmt: skip
    document = json.loads(server.get("/status.json").body)
    assert document["summary"] == {"failing": 1, "never-polled": 1, "disabled": 1, "ok": 2}
    assert {source["id"]: source["health"] for source in document["sources"]}["b-broken"] == "failing"


@BOTH_BACKENDS
def test_status_with_a_token(
    secret_site: SiteFolder, serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDHUB_STATUS_TOKEN", "s3cret-token")
    server = serve(secret_site.config(status="token"))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
        for path in ("/status", "/status.json"):
            reply = server.get(path, headers)
            assert reply.status == 401 and "hunter2" not in reply.text
            assert reply.headers["www-authenticate"].startswith("Bearer")
    full = server.get("/status.json", {"Authorization": "Bearer s3cret-token"})
    assert full.status == 200 and SECRET_URL in full.text
    assert "pid" in json.loads(full.body)["scheduler"]


def test_status_off(secret_site: SiteFolder, serve: Callable[..., Server]) -> None:
    server = serve(secret_site.config(status="off"))
    assert server.get("/status").status == server.get("/status.json").status == 404


def test_status_setting_is_checked(site: SiteFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEEDHUB_STATUS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"feedhub.yaml: status: must be one of public, token, off"):
        site.config(status="private")
    with pytest.raises(
        ConfigError, match=r"status: is token, but the environment variable FEEDHUB_STATUS_TOKEN"
    ):
        site.config(status="token")
    assert site.config().status is StatusAccess.PUBLIC
    monkeypatch.setenv("FEEDHUB_STATUS_TOKEN", "a-long-token")
    assert "a-long-token" not in repr(site.config(status="token"))


def health(server: Server) -> tuple[int, dict[str, object]]:
    reply = server.get("/healthz")
    return reply.status, json.loads(reply.body)


@BOTH_BACKENDS
def test_healthz_tells_whether_aggregation_works(site: SiteFolder, serve: Callable[..., Server]) -> None:
    site.write_sources(
        {"id": "a", "url": "https://a.example/rss"}, {"id": "b", "url": "https://b.example/rss"}
    )
    clock = FrozenClock(NOW)
    server = serve(site.config(), clock=clock)
    status, body = health(server)
    assert status == 200 and body["scheduler"] == {
        "running": False,
        "last_poll": None,
        "sources": 2,
        "failing": 0,
        "problem": None,
    }
    clock.now += 121  # the shortest interval (1 min) and a minute more, no scheduler
    status, body = health(server)
    assert status == 503 and body["status"] == "unhealthy"
    assert "no scheduler has held the data folder for 121 s" in body["scheduler"]["problem"]
    lock = SchedulerLock(site.root / "data")
    lock.acquire(wait=False)
    try:
        status, body = health(server)  # a scheduler, but nothing polled yet
        assert status == 503 and "no poll has finished for 121 s" in body["scheduler"]["problem"]
        state = StateStore(open_storage(site.config()).state)
        for source_id in ("a", "b"):
            state.source(source_id, f"https://{source_id}.example/rss", lambda: None)
        state.record("a", Outcome(PollResult.NEW, new=1), clock.now, clock.now + 60)
        state.record("b", Outcome(PollResult.ERROR, "HTTP 500"), clock.now, clock.now + 600)  # in backoff
        status, body = health(server)
        assert status == 200 and body["scheduler"]["failing"] == 1 and body["scheduler"]["running"]
        clock.now += 600  # b's backoff over, and a long overdue
        assert health(server)[0] == 503
    finally:
        lock.release()


@BOTH_BACKENDS
def test_healthz_without_sources_is_healthy(site: SiteFolder, serve: Callable[..., Server]) -> None:
    clock = FrozenClock(NOW)
    server = serve(site.config(), clock=clock)
    clock.now += 86_400
    status, body = health(server)
    assert status == 200 and body["status"] == "ok" and body["scheduler"]["sources"] == 0
