"""OPML 2.0: every feed the site publishes, for importing into a feed reader at once."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from xml.etree import ElementTree

from feedhub.site import Category, Site


def opml_document(site: Site, categories: list[Category], fmt: str, updated: datetime | None) -> bytes:
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = site.config.title
    if updated is not None:
        ElementTree.SubElement(head, "dateModified").text = format_datetime(updated)
    ElementTree.SubElement(head, "ownerName").text = site.config.author
    ElementTree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = ElementTree.SubElement(root, "body")
    outlines: list[tuple[str, str | None, str]] = [(site.config.title, None, site.urls.home())]
    outlines += [
        (category.title, category.slug, site.urls.category_page(category.slug)) for category in categories
    ]
    for title, slug, html_url in outlines:
        ElementTree.SubElement(
            body,
            "outline",
            type="rss",
            text=title,
            title=title,
            xmlUrl=site.urls.feed(slug, fmt),
            htmlUrl=html_url,
        )
    ElementTree.indent(root)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
