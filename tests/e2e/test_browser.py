"""The served pages in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium): layout facts at a desktop's 1280 px and a phone's 390 px, the directory followed by
clicks, dark mode. Each page's screenshot is saved: to $FEEDHUB_SCREENSHOTS when set (the README's
are made so, into docs/screenshots), else into the test's temporary folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SEEDS, ServeProcess, SiteFolder, free_port, wait_for
from tests.many_posts import CATEGORIES, slug_of, tag_of, write_posts
from tests.upstream import Response, Upstream

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS_ENV = "FEEDHUB_SCREENSHOTS"
POSTS = 6_000
DESKTOP, PHONE = 1280, 390
RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Up</title><link>http://up/</link>
<description>d</description><item><title>From upstream</title><link>http://up/1</link>
<guid>up-1</guid><description>Text.</description></item></channel></rss>"""

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a test dependency")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "Debian's chromium and chromium-driver are not installed (.ci/run installs them: "
        "apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )


@dataclass
class Site:
    url: str
    server: ServeProcess
    post: str  # the path of a seed post's page (a long article), or of a generated one
    shots: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("browser")
    folder = SiteFolder(root / "site")
    write_posts(folder, POSTS)
    post = f"/{slug_of(7)}/2021/12/08/00007.html"
    if SEEDS.is_dir():  # the two articles the product was specified from
        for number, seed in enumerate(sorted(SEEDS.glob("*.txt"))):
            (folder.posts / f"2022-0{4 + 2 * number}-15-seed{number}.md").write_bytes(seed.read_bytes())
        post = "/guojiafazhangaigewei/2022/04/15/seed0.html"
    upstream = Upstream()
    upstream.feed("/rss", RSS)
    upstream.script("/gone", Response(410, b"gone"))
    long_path = "/feeds/" + "very-long-path-segment-" * 8 + "rss.xml?key=" + "x" * 60
    upstream.script(long_path.split("?")[0], Response(500, b"broken"))
    folder.write_sources(
        {"id": "upstream-wire", "url": upstream.url("/rss")},
        {"id": "retired-wire", "url": upstream.url("/gone")},
        {"id": "a-source-whose-address-is-very-long", "url": upstream.url(long_path)},
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = folder.write_config(
        base_url=url, language="zh-CN", title="财经新闻", allow_private_addresses=True
    )
    server = ServeProcess(config, root / "serve.log", port=port)
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)

    def polled() -> bool:  # every source once: the status page shows each kind of result
        return all(source["last_poll"] for source in json.loads(server.get("/status.json").body)["sources"])

    try:
        assert wait_for(polled, timeout=60), server.log()
        yield Site(url, server, post, shots)
    finally:
        server.stop()
        upstream.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)  # no sandbox: CI runs the tests as root
    service = webdriver.chrome.service.Service(str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options)
    yield driver
    driver.quit()


def show(browser: Any, url: str, width: int, dark: bool = False) -> None:
    """Load `url` in a viewport `width` px wide (a phone's when narrow), light or dark."""
    phone = width < 600
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 844 if phone else 800, "deviceScaleFactor": 1, "mobile": phone},
    )
    scheme = [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": scheme})
    browser.get(url)


def overflow(browser: Any) -> int:
    """How many pixels the page is wider than its viewport (0: no horizontal scrolling)."""
    return int(browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth"))


PAGES = {
    "home": "/",
    "categories": "/categories.html",
    "latest": "/latest.html?page=2",
    "category": f"/category/{slug_of(7)}.html",
    "post": None,  # the site's
    "status": "/status",
    "search": "/search?q=%E6%96%B0%E9%97%BB",  # 新闻
    "feed-preview": f"/feeds/{slug_of(7)}.atom",
    "not-found": "/no/such/page",
}


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
@pytest.mark.parametrize("name", list(PAGES))
def test_pages_fit_the_screen(site: Site, browser: Any, name: str, width: int) -> None:
    show(browser, site.url + (PAGES[name] or site.post), width)
    assert browser.find_element("tag name", "h1" if name != "home" else "h2").text
    assert overflow(browser) <= 0, f"{name} is wider than {width} px"
    # a date is never broken inside: each <time> is on one line
    broken = browser.execute_script(
        "return [...document.querySelectorAll('time')].filter(t => t.getClientRects().length > 1).length"
    )
    assert broken == 0
    # Chromium lays a banner over pages made by XSLT (deprecated in every browser): not ours to show
    browser.execute_script("document.querySelector('xslt-warning-banner')?.remove()")
    browser.save_screenshot(str(site.shots / f"{name}-{width}.png"))


def test_the_directory_is_followed_by_clicks(site: Site, browser: Any) -> None:
    show(browser, site.url + "/", PHONE)
    browser.find_element("css selector", f'a[href="{site.url}/categories.html"]').click()
    assert browser.current_url == f"{site.url}/categories.html"
    rows = browser.find_elements("css selector", "table.directory tbody tr")
    assert len(rows) == json.loads(site.server.get("/healthz").body)["categories"] >= CATEGORIES
    browser.find_element("css selector", 'nav.jump a[href="#initial-Q"]').click()
    heading = browser.find_element("id", "initial-Q")
    assert wait_for(
        lambda: abs(browser.execute_script("return arguments[0].getBoundingClientRect().top", heading)) < 5
    )
    # the first category under Q: its page, then back to the directory
    first = browser.find_element("css selector", "#initial-Q + table tbody tr a")
    title = first.text
    first.click()
    assert browser.find_element("tag name", "h1").text == title
    assert browser.current_url.startswith(f"{site.url}/category/")
    browser.back()
    assert browser.current_url.endswith("/categories.html#initial-Q")


def test_the_latest_listing_pages_by_clicks(site: Site, browser: Any) -> None:
    show(browser, site.url + "/latest.html", DESKTOP)
    first = browser.find_elements("css selector", "ul.posts li a")[0].text
    browser.find_element("css selector", 'nav.pages a[rel="next"]').click()
    assert browser.current_url == f"{site.url}/latest.html?page=2"
    assert browser.find_elements("css selector", "ul.posts li a")[0].text != first
    browser.find_element("css selector", 'nav.pages a[rel="prev"]').click()
    assert browser.find_elements("css selector", "ul.posts li a")[0].text == first


def test_post_pages_lead_to_their_neighbours(site: Site, browser: Any) -> None:
    show(browser, site.url + f"/{slug_of(7)}/2021/12/08/00007.html", PHONE)
    newer = browser.find_element("css selector", 'nav.pages a[rel="prev"]')
    assert newer.text == f"← 新闻标题 {7 + CATEGORIES}"
    newer.click()
    assert browser.find_element("tag name", "h1").text == f"新闻标题 {7 + CATEGORIES}"
    assert tag_of(7) in browser.find_element("css selector", "p.meta").text


def test_dark_mode(site: Site, browser: Any) -> None:
    for dark, background in ((False, "rgb(255, 255, 255)"), (True, "rgb(18, 18, 18)")):
        show(browser, site.url + site.post, DESKTOP, dark=dark)
        color = browser.execute_script("return getComputedStyle(document.documentElement).backgroundColor")
        assert color == background
    browser.save_screenshot(str(site.shots / f"post-{DESKTOP}-dark.png"))


def test_a_link_without_an_address_reads_as_text(site: Site, browser: Any) -> None:
    show(browser, site.url + "/", DESKTOP)
    colors = browser.execute_script(
        "const a = document.createElement('a'); a.textContent = 'x';"
        "document.querySelector('main').append(a);"
        "return [getComputedStyle(a).color, getComputedStyle(document.body).color,"
        "getComputedStyle(a).textDecorationLine]"
    )
    assert colors[0] == colors[1] and colors[2] == "none"


def test_the_status_page_on_a_phone(site: Site, browser: Any) -> None:
    show(browser, site.url + "/status", PHONE)
    summary = browser.find_element("css selector", "p.summary").text
    assert "2 个失败" in summary and "1 个正常" in summary
    rows = browser.find_elements("css selector", "table.status tbody tr")
    assert [row.get_attribute("class") for row in rows] == ["failing", "failing", "ok"]
    assert "有新条目" in rows[2].text
    assert overflow(browser) <= 0


@pytest.mark.parametrize("path", [f"/feeds/{slug_of(7)}.atom", "/feed.rss"])
def test_a_feed_opened_in_the_browser_reads_as_a_page(site: Site, browser: Any, path: str) -> None:
    show(browser, site.url + path, PHONE)
    note = browser.find_element("css selector", ".note").text
    assert "这是一个订阅源" in note
    assert browser.find_element("id", "feed-address").text == site.url + path
    entries = browser.find_elements("css selector", "ul.entries li a")
    assert entries and all(entry.text for entry in entries)
    assert overflow(browser) <= 0
    # a click on an entry opens its post page
    title = entries[0].text
    entries[0].click()
    assert browser.find_element("tag name", "h1").text == title


def test_search_from_the_box_on_every_page(site: Site, browser: Any) -> None:
    show(browser, site.url + "/categories.html", PHONE)
    box = browser.find_element("css selector", 'header form.search input[name="q"]')
    box.send_keys(f"新闻标题 {7 + CATEGORIES}\n")
    assert wait_for(lambda: "/search?q=" in browser.current_url)
    results = browser.find_elements("css selector", "ol.results li")
    assert results and browser.find_elements("css selector", "ol.results li mark")
    assert overflow(browser) <= 0
    # best match first, from the page's own form; then the first result's page
    browser.find_element("css selector", 'form.search-page select option[value="relevance"]').click()
    browser.find_element("css selector", "form.search-page button").click()
    assert wait_for(lambda: "sort=relevance" in browser.current_url)
    first = browser.find_element("css selector", "ol.results li a")
    title = first.text
    first.click()
    assert browser.find_element("tag name", "h1").text == title


def test_search_pages_by_clicks(site: Site, browser: Any) -> None:
    show(browser, site.url + "/search?q=%E6%96%B0%E9%97%BB", DESKTOP)
    first = browser.find_elements("css selector", "ol.results li a")[0].text
    browser.find_element("css selector", 'nav.pages a[rel="next"]').click()
    assert wait_for(lambda: "page=2" in browser.current_url)
    assert browser.find_element("css selector", "ol.results").get_attribute("start") == "21"
    browser.find_element("css selector", 'nav.pages a[rel="prev"]').click()
    assert browser.find_elements("css selector", "ol.results li a")[0].text == first


def test_screenshots_are_written(site: Site) -> None:
    for name in PAGES:
        for width in (DESKTOP, PHONE):
            assert (site.shots / f"{name}-{width}.png").read_bytes().startswith(b"\x89PNG\r\n"), name
