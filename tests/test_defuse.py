"""What reaches feedparser: no big entities, no references it cannot decode, wide encodings read."""

from __future__ import annotations

from datetime import UTC

import pytest

from feedhub.aggregator.defuse import UnsafeDocument, defuse
from feedhub.aggregator.entries import ParseError, parse_feed


def test_long_and_external_entities_are_dropped_short_ones_kept() -> None:
    document = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/rss-0.91.dtd" [
<!-- don't be fooled by [ or > in a comment -->
<!ENTITY nbsp "&#160;">
<!ENTITY big "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA">
<!ENTITY nested "&big;&big;">
<!ENTITY ext SYSTEM "file:///etc/passwd">
<!ENTITY % parameter "x">
<!ENTITY short 'ok'>
]>
<rss version="0.91"><channel/></rss>"""
    body = defuse(document).body.decode()
    assert '<!ENTITY nbsp "&#160;">' in body and "<!ENTITY short 'ok'>" in body
    for gone in ("big", "nested", "ext", "parameter", "passwd"):
        assert f"ENTITY {gone}" not in body and f"% {gone}" not in body
    assert "Netscape Communications" in body  # feedparser still recognizes RSS 0.91n
    assert body.endswith('<rss version="0.91"><channel/></rss>')


def test_a_doctype_without_an_internal_subset_is_left_alone() -> None:
    document = b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "x.dtd"><rss/>'
    assert defuse(document).body == document


def test_a_doctype_never_closed_is_refused() -> None:
    with pytest.raises(UnsafeDocument, match="never closed"):
        defuse(b'<!DOCTYPE rss [ <!ENTITY a "x">')


@pytest.mark.parametrize(
    "reference", [b"&#x110000;", b"&#1114112;", b"&#99999999999999999999;", b"&#xD800;", b"&#56320"]
)
def test_references_beyond_unicode_become_the_replacement_character(reference: bytes) -> None:
    assert defuse(b"<a>x" + reference + b"y</a>").body == b"<a>x&#xFFFD;y</a>"


def test_ordinary_references_are_untouched() -> None:
    document = b"<a>&#8217; &#x2019; &#x1F600; &#0000065; &amp;</a>"
    assert defuse(document).body == document


def test_wide_encodings_are_read_as_utf8() -> None:
    text = (
        '<?xml version="1.0" encoding="UTF-16"?><rss version="2.0"><channel><title>中</title></channel></rss>'
    )
    for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):
        defused = defuse(text.encode(encoding))
        assert defused.transcoded
        assert defused.body.decode("utf-8").startswith('<?xml version="1.0" encoding="utf-8"?>')
        assert parse_feed(defused.body, {}, "https://x.example/", UTC).title == "中"


def test_an_entity_bomb_in_utf16_is_defused_too() -> None:
    document = (
        '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE rss [\n<!ENTITY a "' + "A" * 10_000 + '">\n]>\n'
        '<rss version="2.0"><channel><title>t</title><item><title>x</title>'
        "<description>" + "&a;" * 10_000 + "</description></item></channel></rss>"
    ).encode("utf-16")
    feed = parse_feed(document, {"content-type": "application/rss+xml; charset=utf-16"}, "https://x/", UTC)
    assert len(feed.entries[0].html) < 100_000


def test_unsafe_documents_are_parse_errors_of_the_source() -> None:
    with pytest.raises(ParseError, match="DOCTYPE is never closed"):
        parse_feed(b'<?xml version="1.0"?><!DOCTYPE rss [', {}, "https://x/", UTC)
