from __future__ import annotations

import os
import tempfile
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedhub.dates import format_date, parse_date
from feedhub.errors import PostError
from feedhub.posts import (
    DurableWrites,
    file_slug,
    file_stem,
    format_post,
    is_post_file,
    parse_post,
    read_post_file,
    split_suffix,
    write_post,
)
from feedhub.text import one_line, xml_safe
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
    (tmp_path / "folder.md").mkdir()  # a folder named like a post is no post file, as the scan says
    assert read_post_file(tmp_path, "folder.md", SHANGHAI) is None
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "folder.md").mkdir()
    assert read_post_file(tmp_path, "sub/folder.md", SHANGHAI) is None
    # a link to a folder is a file the scan finds: refused with its reason, at the top or below
    (tmp_path / "link.md").symlink_to(tmp_path / "folder.md")
    (tmp_path / "sub" / "link.md").symlink_to(tmp_path / "folder.md")
    for linked in ("link.md", "sub/link.md"):
        unreadable = read_post_file(tmp_path, linked, SHANGHAI)
        assert unreadable.post is None and "not a regular file (a folder)" in (unreadable.problem or "")
    (tmp_path / "bom.md").write_bytes(b"\xef\xbb\xbf" + post_text(title="BOM").encode())
    assert read_post_file(tmp_path, "bom.md", SHANGHAI).post.title == "BOM"
    (tmp_path / "inside.md").symlink_to(tmp_path / "bom.md")  # a link inside the folder is read
    (tmp_path / "sub" / "inside.md").symlink_to("../bom.md")
    assert read_post_file(tmp_path, "inside.md", SHANGHAI).post.title == "BOM"
    assert read_post_file(tmp_path, "sub/inside.md", SHANGHAI).post.title == "BOM"


def test_post_file_names() -> None:
    assert is_post_file("2021-12-08-x.md") and is_post_file("-202205262391921712.md")
    assert is_post_file("a.markdown") and is_post_file("a.HTML") and is_post_file("000_seed.txt")
    assert not is_post_file(".hidden.md") and not is_post_file("_draft.md")
    assert not is_post_file("post.md~") and not is_post_file("#post.md#") and not is_post_file("image.png")
    assert file_slug("sub/2021-12-08-202112082206672930.md") == "202112082206672930"
    assert file_slug("-202205262391921712.md") == "-202205262391921712"


def test_corpus_posts_parse_as_the_readme_says(tmp_path: Path) -> None:
    folder = corpus_posts(tmp_path)
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


# ---- what the writer writes, the reader reads back ---------------------------------------------

HOSTILE_TEXT = st.text(
    st.one_of(
        st.characters(codec=None),
        st.sampled_from(
            list(
                "\x00\x07\x1b\x7f\x80\x85\x9f\u2028\u2029\u202e\u200b\ufeff\ud800\udfff\ufffe\"'\\:#&*!|>%@`"
            )
        ),
    ),
    max_size=60,
)
MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.one_of(st.timezones(), st.just(UTC)),
    allow_imaginary=False,  # times skipped by a DST change: no conversion produces them
)


@settings(max_examples=300, deadline=None)
@given(title=HOSTILE_TEXT, tag=HOSTILE_TEXT, author=HOSTILE_TEXT, source_id=HOSTILE_TEXT, moment=MOMENTS)
def test_every_post_the_writer_produces_reads_back(
    title: str, tag: str, author: str, source_id: str, moment: datetime
) -> None:
    clean_title = one_line(title) or "untitled"
    text = format_post(
        [
            ("layout", "post"),
            ("title", clean_title),
            ("date", moment),
            ("categories", ["news"]),
            ("tags", tag),
            ("author", author),
            ("source", "up"),
            ("source_id", source_id),
            ("enclosures", [{"url": "https://x.example/a.mp3", "type": tag}]),
        ],
        "body",
    )
    post = parse_post(text, "x.md", SHANGHAI)
    assert post.title == clean_title
    # the same moment, to the second (as the seeds write it), whatever the zone (LMT offsets too).
    # Compared in UTC: Python calls an ambiguous local time (a DST fold) unequal to any other zone's.
    assert post.date.astimezone(UTC) == moment.replace(microsecond=0).astimezone(UTC)
    assert post.tags == ((xml_safe(tag).strip(),) if xml_safe(tag).strip() else ())
    assert post.source_id == (xml_safe(source_id).strip() or None)
    assert post.author == (xml_safe(author).strip() or None)


@settings(max_examples=300, deadline=None)
@given(
    title=HOSTILE_TEXT,
    category=HOSTILE_TEXT,
    tag=HOSTILE_TEXT,
    body=HOSTILE_TEXT,
    moment=MOMENTS,
    later=st.one_of(st.none(), MOMENTS),
    length=st.one_of(st.none(), st.integers(-5, 2**40)),
)
def test_a_written_post_is_what_reading_it_back_gives(
    title: str,
    category: str,
    tag: str,
    body: str,
    moment: datetime,
    later: datetime | None,
    length: int | None,
) -> None:
    # The merge indexes what write_post returns, never reading the file again: it must be the
    # very post (and stamp and digest) that reading the file gives, whatever the values hold.
    front_matter: list[tuple[str, object]] = [
        ("layout", "post"),
        ("title", title),
        ("date", moment),
        ("categories", [category] if " " in category else category),
        ("tags", tag),
        ("source", "up"),
        ("source_url", f"https://x.example/{tag}"),
        ("source_id", title),
        ("last_modified_at", later),
        ("author", tag or None),
        ("enclosures", [{"url": "https://x.example/a.mp3", "type": tag, "length": length}]),
    ]
    with tempfile.TemporaryDirectory() as folder:
        written = write_post(Path(folder), "2021-12-08-x.md", front_matter, body, SHANGHAI)
        read = read_post_file(Path(folder), "2021-12-08-x.md", SHANGHAI)
    assert written == read
    if written.post and read and read.post:  # equal instants; the index stores them as written
        assert written.post.date.isoformat() == read.post.date.isoformat()
        assert str(written.post.updated) == str(read.post.updated)


def test_dates_are_written_as_the_seeds_write_them() -> None:
    assert format_date(datetime(2021, 12, 8, 10, 35, 30, tzinfo=SHANGHAI)) == "2021-12-08 10:35:30 +0800"
    assert format_date(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01 00:00:00 +0000"  # strftime: "1-01-01"
    # Shanghai's local mean time before 1901 is +08:05:43, which no "+0800"-form reader takes
    assert format_date(datetime(1890, 5, 1, 12, 0, tzinfo=SHANGHAI)) == "1890-05-01 03:54:17 +0000"
    assert format_date(datetime(2021, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))).endswith(
        "-0330"
    )


def test_out_of_range_dates_are_a_reason_to_skip() -> None:
    for value in ("0001-01-01 00:00:00 +0800", "9999-12-31 23:00:00 -0500", "0001-01-01"):
        with pytest.raises(PostError, match="out of range"):
            parse_post(post_text(date=value), "x.md", SHANGHAI)  # year 1 in Shanghai is year 0 in UTC
    assert parse_post(post_text(date="0001-01-01 00:00:00 +0000"), "x.md", UTC).date.year == 1


def test_titles_lose_what_hides_or_reorders_text() -> None:
    post = parse_post(post_text(title="a\u202eb\u200bc\u2066d\u2069 \x85e\ufefff"), "x.md", SHANGHAI)
    assert post.title == "abcd ef"
    assert one_line("line\x85break\u2028here") == "line break here"
    assert (
        parse_post(post_text(title="می\u200cخواهم 👨\u200d👩"), "x.md", SHANGHAI).title
        == "می\u200cخواهم 👨\u200d👩"
    )


def test_a_huge_value_is_quoted_in_a_few_characters() -> None:
    value = "x" * 1_000_000
    post = parse_post(post_text(permalink=value), "x.md", SHANGHAI)
    assert len(post.warnings[0]) < 200
    with pytest.raises(PostError) as caught:
        parse_post(post_text(date="[" + "1, " * 5_000 + "]"), "x.md", SHANGHAI)
    assert "is not a date" in str(caught.value) and len(str(caught.value)) < 300


# Relative paths as the scan makes them: parts joined by single slashes, none empty.
POST_PATHS = st.lists(st.text(st.sampled_from("ab.-_ 中"), min_size=1), min_size=1, max_size=3).map("/".join)


@given(POST_PATHS)
def test_suffixes_and_stems_are_pathlibs(path: str) -> None:
    pure = PurePosixPath(path)
    if str(pure) != path or "." in path.split("/"):  # pathlib drops "." parts; the scan makes none
        return
    assert split_suffix(path) == (str(pure.with_suffix("")) if pure.suffix else path, pure.suffix)
    assert file_stem(path) == pure.stem


def test_durable_writes_are_in_place_only_once_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "b.md").write_text("old b", "utf-8")
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda old, new: events.append("rename") or real_replace(old, new))
    writes = DurableWrites()
    stamps = {name: writes.write(tmp_path / name, f"new {name}") for name in ("a.md", "b.md", "c.md")}
    # Before the commit readers see the old files and no new one; the temporaries wait beside them.
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".")) == ["b.md"]
    assert (tmp_path / "b.md").read_text("utf-8") == "old b" and events == []
    writes.commit()
    assert sorted(os.listdir(tmp_path)) == ["a.md", "b.md", "c.md"]  # no temporary left
    for name, (mtime_ns, size) in stamps.items():
        assert (tmp_path / name).read_text("utf-8") == f"new {name}"
        assert ((tmp_path / name).stat().st_mtime_ns, (tmp_path / name).stat().st_size) == (mtime_ns, size)
    # Every file on disk before any is renamed into place; then the folder, once.
    assert events == ["fsync"] * 3 + ["rename"] * 3 + ["fsync"]


def test_durable_writes_that_cannot_reach_the_disk_are_not_put_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(descriptor: int) -> None:
        raise OSError(5, "Input/output error")

    writes = DurableWrites()
    writes.write(tmp_path / "a.md", "a")
    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output"):
        writes.commit()
    assert os.listdir(tmp_path) == []  # neither the file nor its temporary
