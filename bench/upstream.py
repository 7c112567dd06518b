"""1,000 upstream feeds of 50 entries each, served by nginx on 127.0.0.1 (with ETags and 304s)."""

from __future__ import annotations

import html
import os
import random
import shutil
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from bench.corpus import load_material
from bench.measure import get, wait_until
from tests.postgres import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def write_feeds(folder: Path, feeds: int, entries: int, seed: int = 7) -> None:
    material = load_material()
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 11, 1, 8, 0, 0)
    for feed in range(feeds):
        items = []
        for number in range(entries):
            when = start + timedelta(minutes=feed + number * 17)
            body = rng.choice(material.articles) if rng.random() < 0.1 else rng.choice(material.digests)
            items.append(
                "<item>"
                # Numbered: each entry is a story of its own (one post per story would merge
                # two entries of one category that drew the same title and body).
                f"<title>{html.escape(rng.choice(material.titles))} ({feed}-{number})</title>"
                f"<link>https://upstream{feed}.example/news/{number}.html</link>"
                f'<guid isPermaLink="false">upstream-{feed}-{number}</guid>'
                f"<pubDate>{when:%a, %d %b %Y %H:%M:%S} +0800</pubDate>"
                f"<description><![CDATA[{body}]]></description>"
                "</item>"
            )
        document = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>上游源 {feed}</title><link>https://upstream{feed}.example/</link>"
            f"<description>bench</description>{''.join(items)}</channel></rss>"
        )
        (folder / f"feed{feed:04d}.xml").write_text(document, "utf-8")


def write_sources(path: Path, base: str, feeds: int, entries: int) -> None:
    sources = [
        {"id": f"up{feed:04d}", "url": f"{base}/feed{feed:04d}.xml", "category": f"up{feed % 200:03d}"}
        for feed in range(feeds)
    ]
    document = {
        "defaults": {"interval": "30m", "backfill": entries, "max_entries": entries},
        "sources": sources,
    }
    path.write_text(yaml.safe_dump(document), "utf-8")


def nginx_config(root: Path | None, runtime: Path, port: int, body: str) -> Path:
    """A minimal nginx on 127.0.0.1 (two workers, like the 2-core machine) around `body`."""
    runtime.mkdir(parents=True, exist_ok=True)
    config = runtime / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""  # workers must read files root wrote
    config.write_text(
        f"""daemon off;
{user}
worker_processes 2;
pid {runtime}/nginx.pid;
error_log {runtime}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {runtime}/body;
    proxy_temp_path {runtime}/proxy;
    fastcgi_temp_path {runtime}/fastcgi;
    uwsgi_temp_path {runtime}/uwsgi;
    scgi_temp_path {runtime}/scgi;
    types {{ application/rss+xml xml; }}
    server {{
        listen 127.0.0.1:{port};
        {f"root {root};" if root else ""}
        {body}
    }}
}}
""",
        "utf-8",
    )
    return config


def start_nginx(
    root: Path | None, runtime: Path, body: str = "", probe: str = "/"
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = nginx_config(root, runtime, port, body)
    process = subprocess.Popen([NGINX, "-c", str(config), "-p", str(runtime)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    if wait_until(lambda: get(url + probe)[0] in (200, 301, 404), timeout=15) is None:
        process.kill()
        raise RuntimeError(f"nginx did not start; see {runtime}/error.log")
    return process, url


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    time.sleep(0.2)
