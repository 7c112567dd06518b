from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from feedhub.dates import parse_date
from feedhub.errors import PostError
from feedhub.posts import file_slug, is_post_file, parse_post, read_post_file
from tests.helpers import SEEDS, corpus_posts, post_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
PLUS_8 = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # the corpus's two forms: naive (site time zone) and with an offset without a colon
        ("2021-12-08 10:46:18", datetime(2021, 12, 8, 10, 46, 18, tzinfo=SHANGHAI)),
        ("2021-12-08 10:20:24 +0800", datetime(2021, 12, 8, 10, 20, 24, tzinfo=PLUS_8)),
        # ISO 8601 with and without an offset
        ("2022-04-15T11:35:24+08:00", datetime(2022, 4, 15, 11, 35, 24, tzinfo=PLUS_8)),
        ("2022-04-15T03:35:24Z", datetime(2022, 4, 15, 3, 35, 24, tzinfo=UTC)),
        (
            "2022-04-15T11:35:24.250-05:30",
            datetime(2022, 4, 15, 11, 35, 24, 250000, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("2022-04-15T11:35", datetime(2022, 4, 15, 11, 35, tzinfo=SHANGHAI)),
        ("2022-04-15", datetime(2022, 4, 15, tzinfo=SHANGHAI)),
        # what PyYAML hands over for unquoted timestamps
        (datetime(2021, 12, 8, 10, 46, 18), datetime(2021, 12, 8, 10, 46, 18, tzinfo=SHANGHAI)),
        (datetime(2021, 12, 8, 2, 0, tzinfo=UTC), datetime(2021, 12, 8, 2, 0, tzinfo=UTC)),
        (date(2021, 12, 8), datetime(2021, 12, 8, tzinfo=SHANGHAI)),
    ],
)
def test_dates(value: object, expected: datetime) -> None:
    parsed = parse_date(value, SHANGHAI)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "value", ["  +0800", "+0800", "yesterday", "2021-13-01 10:00:00", "2021-12-08 25:00:00", 20211208, ""]
)
def test_unusable_dates(value: object) -> None:
    with pytest.raises(ValueError):
        parse_date(value, SHANGHAI)


def test_naive_dates_use_the_site_timezone() -> None:
    post = parse_post(post_text(date="2021-12-08 10:46:18"), "a.md", ZoneInfo("Europe/Berlin"))
    assert post.date.isoformat() == "2021-12-08T10:46:18+01:00"


def test_seed_post() -> None:
    file = (
        read_post_file(SEEDS, "000_3a73bc1ef7feb9ef.txt", SHANGHAI)
        if SEEDS.is_dir()
        else pytest.skip("no seeds")
    )
    post = file.post
    assert post is not None and file.problem is None
    assert post.title == "开启“直播+消费帮扶”模式 2022新春首场公益直播“开门红”！！"
    assert post.date.isoformat() == "2022-04-15T11:35:24+08:00"
    assert post.categories == ("guojiafazhangaigewei",)
    assert post.tags == ("国家发展改革委新闻",)
    assert post.body_format == "markdown"
    assert post.body.startswith("<p>2022年是实施")
    assert file.size == (SEEDS / "000_3a73bc1ef7feb9ef.txt").stat().st_size


def test_categories_and_tags_as_string_or_list() -> None:
    one = parse_post(
        post_text(categories="21shijijingjibaodao  nancailicaitong", tags="a b"), "x.md", SHANGHAI
    )
    assert one.categories == ("21shijijingjibaodao  nancailicaitong",)  # one name, spaces kept
    assert one.tags == ("a b",)
    many = parse_post(
        post_text(categories=["emnews", "sitenews", "emnews", ""], tags=["t1", 2]), "x.md", SHANGHAI
    )
    assert many.categories == ("emnews", "sitenews")
    assert many.tags == ("t1", "2")
    singular = parse_post(
        post_text(categories=None, category="anxinguojizhengquan(xianggang)"), "x.md", SHANGHAI
    )
    assert singular.categories == ("anxinguojizhengquan(xianggang)",)
    none = parse_post(post_text(categories=None), "x.md", SHANGHAI)
    assert none.categories == ()


def test_optional_fields() -> None:
    post = parse_post(
        post_text(
            author={"name": "ZNing"},
            description="A short summary",
            permalink="/custom/path.html",
            id="tag:example.org,2021:1",
            last_modified_at="2022-04-16 09:00:00",
        ),
        "x.md",
        SHANGHAI,
    )
    assert post.author == "ZNing"
    assert post.description == "A short summary"
    assert post.permalink == "/custom/path.html"
    assert post.entry_id == "tag:example.org,2021:1"
    assert post.updated == datetime(2022, 4, 16, 9, 0, tzinfo=SHANGHAI)
    assert post.published


def test_draft_and_bad_optional_fields() -> None:
    post = parse_post(post_text(published=False, permalink="relative.html", updated="soon"), "x.md", SHANGHAI)
    assert not post.published
    assert post.permalink is None and post.updated is None
    assert any("permalink" in warning for warning in post.warnings)
    assert any("updated ignored" in warning for warning in post.warnings)


def test_date_from_file_name_when_front_matter_has_none() -> None:
    post = parse_post(post_text(date=None), "2021-12-08-202112082206672930.md", SHANGHAI)
    assert post.date == datetime(2021, 12, 8, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (post_text(title=""), "empty title"),
        ("---\ndate: 2021-12-08 10:00:00\n---\nbody", "no title"),
        (post_text(date="' +0800'"), "date '+0800' is not a date"),
        (post_text(date=None), "no date"),
        ("just text, no front matter", "no front matter"),
        ("---\ntitle: x\n", "not closed"),
        ("---\ntitle: [unclosed\ndate: 2021-12-08\n---\nbody", "not valid YAML: line 3, column 5"),
        ("---\n- a\n- b\n---\nbody", "not a mapping"),
    ],
)
def test_unpublishable_posts_say_why(text: str, reason: str) -> None:
    with pytest.raises(PostError) as caught:
        parse_post(text, "post.md", SHANGHAI)
    assert reason in caught.value.reason
    assert str(caught.value).startswith("post.md: ")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(PostError) as caught:
        parse_post(post_text(title="", date="'  +0800'"), "post.md", SHANGHAI)
    assert "empty title" in caught.value.reason and "is not a date" in caught.value.reason


def test_blank_lines_before_front_matter_are_tolerated_with_a_warning() -> None:
    post = parse_post("\n\n" + post_text(title="FF"), "x.md", SHANGHAI)
    assert post.title == "FF"
    assert post.warnings == ("blank lines before the front matter (Jekyll would not see it)",)


def test_control_characters_are_removed() -> None:
    post = parse_post(post_text(title="A\x07B", body="x\x00y\x1bz"), "x.md", SHANGHAI)
    assert post.title == "AB" and post.body == "xyz"
    assert post.warnings


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "latin1.md").write_bytes(post_text(title="caf\xe9").encode("latin-1"))
    file = read_post_file(tmp_path, "latin1.md", SHANGHAI)
    assert file.post is None and "not UTF-8" in (file.problem or "")
    assert read_post_file(tmp_path, "gone.md", SHANGHAI) is None
    (tmp_path / "folder.md").mkdir()
    unreadable = read_post_file(tmp_path, "folder.md", SHANGHAI)
    assert unreadable.post is None and "not a regular file (a folder)" in (unreadable.problem or "")
    (tmp_path / "bom.md").write_bytes(b"\xef\xbb\xbf" + post_text(title="BOM").encode())
    assert read_post_file(tmp_path, "bom.md", SHANGHAI).post.title == "BOM"


def test_post_file_names() -> None:
    assert is_post_file("2021-12-08-x.md") and is_post_file("-202205262391921712.md")
    assert is_post_file("a.markdown") and is_post_file("a.HTML") and is_post_file("000_seed.txt")
    assert not is_post_file(".hidden.md") and not is_post_file("_draft.md")
    assert not is_post_file("post.md~") and not is_post_file("#post.md#") and not is_post_file("image.png")
    assert file_slug("sub/2021-12-08-202112082206672930.md") == "202112082206672930"
    assert file_slug("-202205262391921712.md") == "-202205262391921712"


def test_corpus_posts_parse_as_the_readme_says() -> None:
    folder = corpus_posts()
    files = {path.name: read_post_file(folder, path.name, SHANGHAI) for path in folder.iterdir()}
    assert len(files) == 112
    skipped = {name: file.problem for name, file in files.items() if file.post is None}
    assert list(skipped) == ["-202205262391921712.md"]
    assert "empty title" in skipped["-202205262391921712.md"]
    assert "'+0800' is not a date" in skipped["-202205262391921712.md"]
    posts = {name: file.post for name, file in files.items() if file.post}
    # both date forms, read in the site's zone
    assert posts["2021-12-08-202112082206717618.md"].date.isoformat() == "2021-12-08T10:20:24+08:00"
    assert posts["2021-12-08-202112082206672930.md"].date.isoformat() == "2021-12-08T10:46:18+08:00"
    # front matter after a blank line is still read
    late = posts["2021-12-08-202112082206703990.md"]
    assert late.title == "FF：有充足的现金支持到FF 91完成投产" and late.warnings
    assert posts["2021-12-01-init.md"].categories == ("sitenews",)
    assert sum(post.categories == ("emnews",) for post in posts.values()) == 110
