"""The site's icon and what describes its categories, in feeds, pages and the export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

from feedhub.aggregator.poller import Poller
from feedhub.aggregator.sources import load_sources
from feedhub.aggregator.state import StateStore
from feedhub.config import DEFAULT_ICON
from feedhub.export import Exporter, open_exported_site
from feedhub.storage import open_storage
from tests.helpers import BASE_URL, FrozenClock, Server, SiteFolder, open_index
from tests.upstream import Upstream, item

ATOM = "{http://www.w3.org/2005/Atom}"
NOW = 1_640_000_000.0


def feed_images(server: Server, path: str) -> dict[str, object]:
    """Each format's image elements, and its description, for one feed path (without a suffix)."""
    atom = ElementTree.fromstring(server.get(f"{path}.atom").body)
    channel = ElementTree.fromstring(server.get(f"{path}.rss").body).find("channel")
    assert channel is not None
    document = json.loads(server.get(f"{path}.json").body)
    return {
        "atom": (
            atom.findtext(f"{ATOM}icon"),
            atom.findtext(f"{ATOM}logo"),
            atom.findtext(f"{ATOM}subtitle"),
        ),
        "rss": (
            channel.findtext("image/url"),
            channel.findtext("image/title") == channel.findtext("title"),
            channel.findtext("image/link") == channel.findtext("link"),
            channel.findtext("description"),
        ),
        "json": (document.get("icon"), document.get("favicon"), document.get("description")),
    }


def test_every_feed_and_page_carries_the_bundled_icon(site: SiteFolder, serve: Callable[..., Server]) -> None:
    site.add("2022-01-01-a.md", title="A", date="2022-01-01 10:00:00", categories="world")
    server = serve(site.config(description="All the news"))
    icon = f"{BASE_URL}/icon.png"
    for path in ("/feed", "/feeds/world"):
        images = feed_images(server, path)
        assert images["atom"][:2] == (icon, icon)
        assert images["rss"][:3] == (icon, True, True)
        assert images["json"][:2] == (icon, icon)
    assert feed_images(server, "/feeds/world")["json"][2] == "All the news"  # the site's, for want of its own
    for path in ("/favicon.ico", "/icon.png"):
        reply = server.get(path)
        assert reply.status == 200 and reply.headers["content-type"] == "image/png"
        assert reply.body == DEFAULT_ICON.read_bytes()
    for page in ("/", "/category/world.html", "/feed.xsl"):
        assert f'<link rel="icon" href="{icon}"' in server.get(page).body.decode()


def test_an_icon_of_the_operators_own(site: SiteFolder, serve: Callable[..., Server]) -> None:
    (site.root / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>", "utf-8")
    server = serve(site.config(icon="logo.svg"))
    assert server.get("/icon.svg").headers["content-type"] == "image/svg+xml"
    assert server.get("/favicon.ico").body == (site.root / "logo.svg").read_bytes()
    assert server.get("/icon.png").status == 404
    assert feed_images(server, "/feed")["atom"][0] == f"{BASE_URL}/icon.svg"

    elsewhere = serve(site.config(icon="https://cdn.example/logo.png"))
    favicon = elsewhere.get("/favicon.ico")
    assert favicon.status == 302 and favicon.headers["location"] == "https://cdn.example/logo.png"
    assert elsewhere.get("/icon.png").status == 404
    assert feed_images(elsewhere, "/feed")["json"][:2] == ("https://cdn.example/logo.png",) * 2


def test_a_category_described_in_the_config(site: SiteFolder, serve: Callable[..., Server]) -> None:
    site.add("2022-01-01-a.md", title="A", date="2022-01-01 10:00:00", categories="world")
    categories = {
        "world": {"title": "World", "description": "News from abroad", "icon": "https://cdn.example/w.png"}
    }
    server = serve(site.config(categories=categories))
    images = feed_images(server, "/feeds/world")
    assert images["atom"] == ("https://cdn.example/w.png", "https://cdn.example/w.png", "News from abroad")
    assert images["rss"][0] == "https://cdn.example/w.png" and images["rss"][3] == "News from abroad"
    page = server.get("/category/world.html").body.decode()
    assert (
        "<p>News from abroad</p>" in page and '<meta name="description" content="News from abroad">' in page
    )
    assert '<img class="icon" src="https://cdn.example/w.png"' in page
    assert "World" in ElementTree.fromstring(server.get("/feeds/world.atom").body).findtext(
        f"{ATOM}title", ""
    )


def _upstream_feed(image: str, description: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Up</title>'
        f"<link>https://upstream.example/</link><description>{description}</description>"
        f"<image><url>{image}</url><title>Up</title><link>https://upstream.example/</link></image>"
        f"{item('First', guid='g1')}</channel></rss>"
    ).encode()


def test_an_aggregated_category_looks_like_its_upstream_feed(
    site: SiteFolder, upstream: Upstream, serve: Callable[..., Server], tmp_path: Path
) -> None:
    body = [_upstream_feed("https://upstream.example/logo.png", "Wire &lt;b&gt;news&lt;/b&gt; &amp; more")]
    upstream.feed("/feed", lambda: body[0])
    site.write_sources({"id": "up", "url": upstream.url("/feed")})
    config = site.config(allow_private_addresses=True)
    index = open_index(config)
    poller = Poller(config, index.writer, StateStore(open_storage(config).state), FrozenClock(NOW))
    (source,) = load_sources(config)
    poller.poll(source)

    server = serve(config)
    images = feed_images(server, "/feeds/news")
    assert images["atom"] == ("https://upstream.example/logo.png",) * 2 + ("Wire news & more",)
    assert images["json"][2] == "Wire news & more"  # its text: markup is no description
    assert feed_images(server, "/feed")["atom"][0] == f"{BASE_URL}/icon.png"  # the site keeps its own
    # the static export shows the same
    out = tmp_path / "out"
    Exporter(open_exported_site(config), out).run()
    atom = ElementTree.fromstring((out / "feeds/news.atom").read_bytes())
    assert atom.findtext(f"{ATOM}icon") == "https://upstream.example/logo.png"
    assert (out / "favicon.ico").read_bytes() == (out / "icon.png").read_bytes() == DEFAULT_ICON.read_bytes()

    # an image that is no http(s) URL is none; the config's words come before the upstream's
    body[0] = _upstream_feed("javascript:alert(1)", "Wire")
    poller.poll(source)
    described = serve(site.config(allow_private_addresses=True, categories={"news": {"description": "Ours"}}))
    images = feed_images(described, "/feeds/news")
    assert images["atom"] == (f"{BASE_URL}/icon.png",) * 2 + ("Ours",)
