"""One Jekyll post file: read it tolerantly, or say exactly why it cannot be published."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import random
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from frontmatter.default_handlers import YAMLHandler

from feedhub.dates import format_date, parse_date
from feedhub.errors import PostError
from feedhub.limits import MAX_FRONT_MATTER_NODES, MAX_POST_BYTES, MIB
from feedhub.safe_yaml import YamlError, flat_mapping, load_yaml
from feedhub.text import one_line, quoted, xml_safe
from feedhub.urls import is_http_url

log = logging.getLogger(__name__)

POST_SUFFIXES = frozenset({".md", ".markdown", ".html", ".txt"})

# Jekyll's own post file name: YYYY-MM-DD-slug.ext
_DATED_NAME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})-(.+)$")
# What mkstemp makes for write_atomically: .<name>.<8 random characters>.tmp
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
# Characters a JSON string holds as they are, which YAML reads as line breaks or refuses.
_YAML_READS_OTHERWISE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_FILE_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}

_YAML = YAMLHandler()
_NAMES = random.Random()  # temporary file names: unguessable enough for O_EXCL to settle the rest
Made = TypeVar("Made")


@dataclass(frozen=True)
class Enclosure:
    """A file attached to a post (a podcast's audio, say)."""

    url: str  # absolute http(s)
    type: str | None
    length: int | None


@dataclass(frozen=True)
class Post:
    path: str  # relative to the posts folder, with forward slashes
    title: str
    date: datetime  # timezone-aware
    updated: datetime | None
    categories: tuple[str, ...]
    tags: tuple[str, ...]
    author: str | None
    description: str | None
    permalink: str | None  # the post's own `permalink`, if it sets one
    entry_id: str | None  # the post's own `id`, if it sets one
    published: bool  # False for `published: false` (a draft)
    enclosures: tuple[Enclosure, ...]
    source: str | None  # for posts the aggregator wrote: the source id, and the upstream
    source_id: str | None  # identity and link of the entry it came from
    source_url: str | None
    body: str
    body_format: Literal["markdown", "html"]
    warnings: tuple[str, ...]

    @property
    def slug(self) -> str:
        """The file name without extension and without Jekyll's date prefix."""
        return file_slug(self.path)


def is_post_file(name: str) -> bool:
    """Post files by extension; like Jekyll, skip hidden, special and backup files."""
    return (
        os.path.splitext(name)[1].lower() in POST_SUFFIXES  # not PurePosixPath: this runs 100,000 times
        and not name.startswith((".", "_", "#"))
        and not name.endswith("~")
    )


def split_suffix(path: str) -> tuple[str, str]:
    """(the path without its suffix, the suffix) by PurePosixPath's rule (the last part's last dot,
    neither its first nor its last character), without building one: a sync asks for every post."""
    dot = path.rfind(".")
    if path.rfind("/") + 1 < dot < len(path) - 1:
        return path[:dot], path[dot:]
    return path, ""


def file_stem(path: str) -> str:
    """The file's name without its suffix (PurePosixPath.stem)."""
    return split_suffix(path.rpartition("/")[2])[0]


def file_slug(path: str) -> str:
    stem = file_stem(path)
    match = _DATED_NAME.match(stem)
    return match.group(4) if match else stem


@dataclass(frozen=True)
class PostFile:
    """One file as read from disk: a post, or the reason it is not one."""

    path: str
    mtime_ns: int
    size: int
    digest: str  # of the bytes read; equal digests mean nothing changed
    post: Post | None
    problem: str | None


def read_post_file(root: Path, path: str, tz: tzinfo) -> PostFile | None:
    """Read ``root/path`` once (None if it is gone, or a folder); the stamp and digest describe the
    bytes parsed.

    Only a regular file inside the folder is read, and only up to MAX_POST_BYTES: a FIFO would
    block the sync forever, a link to /dev/zero would fill memory, and a link out of the folder
    would publish a file nobody put there (Jekyll's safe mode refuses links too).
    """
    full = os.path.join(root, path)
    try:
        descriptor, through_link = _open_inside(root, full, path)
    except FileNotFoundError:
        return None
    except PostError as exc:
        return PostFile(path, 0, 0, "", None, exc.reason)
    except OSError as exc:
        return PostFile(path, 0, 0, "", None, f"cannot read: {exc.strerror}")
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode) and not through_link:
            return None  # a folder named like a post is a folder, as the scan of the folder says
        if not stat.S_ISREG(status.st_mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(status.st_mode), "a special file")
            return PostFile(path, 0, 0, "", None, f"not a regular file ({kind})")
        data = b"" if status.st_size > MAX_POST_BYTES else _read_to_end(descriptor, status.st_size)
    except OSError as exc:
        return PostFile(path, 0, 0, "", None, f"cannot read: {exc.strerror}")
    finally:
        os.close(descriptor)
    stamp = (status.st_mtime_ns, status.st_size)
    if status.st_size > MAX_POST_BYTES or len(data) > MAX_POST_BYTES:
        size = max(status.st_size, len(data))
        problem = f"larger than the {MAX_POST_BYTES // MIB} MiB limit for a post ({size:,} bytes or more)"
        return PostFile(path, *stamp, "", None, problem)
    digest = _digest(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        return PostFile(path, *stamp, digest, None, problem)
    try:
        post = parse_post(text, path, tz)
    except PostError as exc:
        return PostFile(path, *stamp, digest, None, exc.reason)
    return PostFile(path, *stamp, digest, post, None)


# O_NONBLOCK: opening a FIFO must not wait for a writer.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


def _open_inside(root: Path, full: str, path: str) -> tuple[int, bool]:
    """The file opened, and whether a symbolic link led to it; PostError for a link that leads out
    of the folder. A plain file at the top (the common case, and a cold sync opens every post)
    costs one call: opened without following a link, and looked at only when it is one."""
    if "/" not in path:
        try:
            return os.open(full, _READ_FLAGS | os.O_NOFOLLOW), False
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
        through_link = True
    else:
        through_link = os.path.islink(full)  # a folder on the way may be a link too: checked below
    real, folder = os.path.realpath(full), os.path.realpath(root)
    if os.path.commonpath([real, folder]) != folder:
        raise PostError(path, f"a symbolic link to {quoted(real)}, outside the posts folder")
    return os.open(full, _READ_FLAGS), through_link


def _read_to_end(descriptor: int, size: int) -> bytes:
    """The file's bytes, read with one call when it still has the size its status said; a file
    that changed size since is read to its end, within the cap of a post and a byte past it."""
    data = os.read(descriptor, size + 1)
    while len(data) != size and len(data) <= MAX_POST_BYTES:
        more = os.read(descriptor, MAX_POST_BYTES + 1 - len(data))
        if not more:
            break
        data += more
    return data


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def parse_post(text: str, path: str, tz: tzinfo) -> Post:
    warnings: list[str] = []
    clean = xml_safe(text)
    if clean != text:
        warnings.append("control characters removed (XML cannot carry them)")
    meta, body = _split_front_matter(clean, path, warnings)
    return _post_from(meta, body, path, tz, warnings)


def _post_from(meta: dict[Any, Any], body: str, path: str, tz: tzinfo, warnings: list[str]) -> Post:
    """The post a file's front matter (as YAML loaded it) and body make; PostError if none."""
    # Collect every reason at once, so one `feedhub check` run shows all there is to fix.
    problems = []
    title = one_line(_scalar_text(meta.get("title")))
    if not title:
        problems.append("empty title" if "title" in meta else "no title")
    try:
        date = _post_date(meta, path, tz)
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise PostError(path, "; ".join(problems))
    updated = None
    for key in ("last_modified_at", "updated"):
        if meta.get(key) is not None:
            try:
                updated = parse_date(meta[key], tz)
            except ValueError as exc:
                warnings.append(f"{key} ignored: {exc}")
            break

    permalink = _scalar_text(meta.get("permalink")) or None
    if permalink and not permalink.startswith("/"):
        warnings.append(f"permalink {quoted(permalink)} ignored: it must start with '/'")
        permalink = None

    return Post(
        path=path,
        title=title,
        date=date,
        updated=updated if updated and updated > date else None,
        categories=_names(meta, "categories", "category"),
        tags=_names(meta, "tags", "tag"),
        author=_author(meta.get("author")),
        description=_scalar_text(meta.get("description") or meta.get("excerpt")) or None,
        permalink=permalink,
        entry_id=_scalar_text(meta.get("id")) or None,
        published=meta.get("published") is not False,
        enclosures=_enclosures(meta.get("enclosures"), warnings),
        source=_scalar_text(meta.get("source")) or None,
        source_id=_scalar_text(meta.get("source_id")) or None,
        source_url=_scalar_text(meta.get("source_url")) or None,
        body=body,
        body_format="html" if split_suffix(path)[1].lower() == ".html" else "markdown",
        warnings=tuple(warnings),
    )


def _split_front_matter(text: str, path: str, warnings: list[str]) -> tuple[dict[Any, Any], str]:
    front, body, blank_lines = _split(text, path, warnings)
    try:
        # Lines as the file numbers them: the front matter's first line ends the opening '---'.
        meta = load_yaml(front, MAX_FRONT_MATTER_NODES, first_line=1 + blank_lines)
    except YamlError as exc:
        raise PostError(path, f"front matter is not valid YAML: {exc}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise PostError(path, "front matter is not a mapping of keys to values")
    return meta, body


def _split(text: str, path: str, warnings: list[str]) -> tuple[str, str, int]:
    """(front matter, body, blank lines before the front matter) of a post file's text."""
    stripped = text.lstrip()
    if not _YAML.detect(stripped):
        raise PostError(path, "no front matter (a post starts with a '---' line)")
    blank_lines = text[: len(text) - len(stripped)].count("\n")
    if blank_lines:
        warnings.append("blank lines before the front matter (Jekyll would not see it)")
    try:
        front, body = _YAML.split(stripped)
    except ValueError:
        raise PostError(path, "front matter is not closed by a '---' line") from None
    return front, body.strip("\n"), blank_lines


def _post_date(meta: dict[Any, Any], path: str, tz: tzinfo) -> datetime:
    if meta.get("date") is not None:
        try:
            return parse_date(meta["date"], tz)
        except ValueError as exc:
            raise ValueError(f"date {exc}") from None
    match = _DATED_NAME.match(file_stem(path))
    if match:
        try:
            return parse_date("-".join(match.group(1, 2, 3)), tz)
        except ValueError:
            pass
    raise ValueError("no date: neither a `date` in the front matter nor a YYYY-MM-DD- file name")


def _scalar_text(value: object) -> str:
    if value is None or isinstance(value, dict | list | set | bool | bytes):
        return ""
    # YAML escapes ("\x07") can carry characters the raw-text cleanup never saw. Names keep their
    # spacing: a category is a slug, and "a  b" is not "a b".
    return xml_safe(str(value)).strip()


def _names(meta: dict[Any, Any], plural: str, singular: str) -> tuple[str, ...]:
    """Categories or tags: a string is one name (finews names contain spaces), a list is many."""
    value = meta.get(plural, meta.get(singular))
    items = value if isinstance(value, list) else [value]
    names = (_scalar_text(item) for item in items)
    return tuple(dict.fromkeys(name for name in names if name))


def _enclosures(value: object, warnings: list[str]) -> tuple[Enclosure, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items:
        url = _scalar_text(item.get("url")) if isinstance(item, dict) else ""
        if not isinstance(item, dict) or not is_http_url(url):
            warnings.append(f"enclosure ignored: {quoted(item)} has no http(s) url")
            continue
        length = item.get("length")
        kind = _scalar_text(item.get("type")) or None
        found.append(Enclosure(url, kind, length if isinstance(length, int) and length >= 0 else None))
    return tuple(found)


def _author(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("name")
    return _scalar_text(value) or None


def format_post(front_matter: list[tuple[str, object]], body: str) -> str:
    """A post file: the keys in the order given (None values left out), then the body."""
    lines = ["---"]
    for key, value in front_matter:
        if value is not None:
            lines.append(_yaml_entry(key, value))
    return "\n".join([*lines, "---", xml_safe(body).rstrip("\n"), ""])


def write_post(
    root: Path,
    path: str,
    front_matter: list[tuple[str, object]],
    body: str,
    tz: tzinfo,
    writes: DurableWrites | None = None,
) -> PostFile:
    """Write a post file (atomically, fsynced; or as one of `writes`, in place once they are
    committed) and return it as read_post_file would read it back, without reading it or parsing
    its YAML again: `_yaml_entry` writes values that load back unchanged, and a date as the text
    that parses back to it."""
    text = format_post(front_matter, body)
    data = text.encode()
    mtime_ns, size = (
        write_atomically(root / path, data) if writes is None else writes.write(root / path, data)
    )
    meta = {
        key: format_date(value) if isinstance(value, datetime) else _writable(value)
        for key, value in front_matter
        if value is not None
    }
    try:
        warnings: list[str] = []
        post = _post_from(meta, _split(text, path, warnings)[1], path, tz, warnings)
    except PostError as exc:
        return PostFile(path, mtime_ns, size, _digest(data), None, exc.reason)
    return PostFile(path, mtime_ns, size, _digest(data), post, None)


def _yaml_entry(key: str, value: object) -> str:
    if isinstance(value, datetime):
        return f"{key}: {format_date(value)}"  # as the seeds write it
    value = _writable(value)
    if isinstance(value, str):
        return f"{key}: {_yaml_string(value, plain=key != 'title')}"  # titles always quoted, as in the seeds
    dumped = yaml.dump(
        {key: value}, Dumper=yaml.CSafeDumper, allow_unicode=True, default_flow_style=False, sort_keys=False
    )
    return dumped.rstrip("\n")


def _writable(value: object) -> object:
    """The value with its text cleaned of what no post file can hold (lone surrogates, C1 controls)."""
    if isinstance(value, str):
        return xml_safe(value)
    if isinstance(value, list):
        return [_writable(item) for item in value]
    if isinstance(value, dict):
        return {_writable(name): _writable(item) for name, item in value.items()}
    return value


def _yaml_string(value: str, plain: bool) -> str:
    """The seeds' form: plain when YAML reads it back unchanged (tags), else JSON-quoted (titles).

    A JSON string is a YAML double-quoted scalar, unless it holds a character JSON leaves as it
    is and YAML reads otherwise (a line separator, a C1 control); then YAML's own emitter writes it.
    """
    if plain and value and value == value.strip() and _reads_back_plain(value):
        return value
    if not _YAML_READS_OTHERWISE.search(value):
        return json.dumps(value, ensure_ascii=False)
    emitted: str = yaml.dump(
        value, Dumper=yaml.CSafeDumper, default_style='"', allow_unicode=True, width=2**31 - 1
    )
    return emitted.rstrip("\n")


@functools.lru_cache(maxsize=4096)  # a merge writes the same categories, tags and source ids again and again
def _reads_back_plain(value: str) -> bool:
    """Whether YAML reads ``k: value`` back as this very string, so it may be written unquoted."""
    line = f"k: {value}"
    flat = flat_mapping(line)  # most values: without the parser (source ids and links are unique)
    if flat is not None:
        return flat == {"k": value}
    try:
        return bool(yaml.load(line, Loader=yaml.CSafeLoader) == {"k": value})
    except yaml.YAMLError:
        return False


def remove_temporaries(folder: Path | str, names: Iterable[str] | None = None) -> int:
    """Delete what interrupted writes (kill -9, a power cut) left in a folder; how many there were.
    `names`: what the folder holds, when the caller has listed it already (an export's walk).

    Only the one process that writes there may call this (the scheduler holding its lock,
    an export): another writer's file would be taken from under it.
    """
    removed = 0
    for name in os.listdir(folder) if names is None else names:
        if not _TEMPORARY.match(name):
            continue
        path = os.path.join(folder, name)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as exc:  # a read-only disk: the writes will fail and say so
            log.warning("%s: cannot remove: %s", path, exc.strerror)
            continue
        removed += 1
    return removed


def write_atomically(
    path: Path, data: str | bytes, fsync: bool = True, mode: int | None = None
) -> tuple[int, int]:
    """Write via a hidden temporary file and a rename: readers see the old file or the new one.
    Returns the file's (mtime_ns, size), as the index stamps it.

    ``fsync`` waits for the file's bytes to reach the disk (the rename reaches it with an fsync
    of the folder: DurableWrites makes both, once for many files). ``mode``: see write_temporary.
    """
    name, stamp = write_temporary(path, data, fsync, mode)
    _rename_into_place(name, path)
    return stamp


def write_temporary(
    path: Path, data: str | bytes, fsync: bool, mode: int | None = None
) -> tuple[str, tuple[int, int]]:
    """The data in a new temporary file beside `path`, with `mode` (None: the mode `path` has,
    else 0644): its name and (mtime_ns, size), which the rename keeps."""
    body = data.encode() if isinstance(data, str) else data
    if mode is None:
        mode = _mode_kept(path)
    descriptor, name = _temporary_beside(path)
    try:
        try:
            os.fchmod(descriptor, mode)  # not the umask's say
            view = memoryview(body)
            while view:
                view = view[os.write(descriptor, view) :]
            if fsync:
                os.fsync(descriptor)
            written = os.fstat(descriptor)
        finally:
            os.close(descriptor)
    except BaseException:
        _remove_temporary(name)
        raise
    return name, (written.st_mtime_ns, written.st_size)


def _mode_kept(path: Path) -> int:
    """A post is for others (Jekyll, nginx) to read, and an operator's mode on it stays."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        return 0o644


class DurableWrites:
    """Files written as one batch, each seen by readers old or new and complete, as with
    write_atomically: each goes to its temporary file; `commit` fsyncs them all once all are
    written (an fsync right after each write made the disk flush them one at a time: a quarter of
    a poll's time), then renames them into place and fsyncs their folders."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, Path]] = []  # (temporary name, path)
        self._folders: set[str] = set()  # of files already in place, renamed by an earlier batch

    def include(self, path: Path) -> None:
        """A file already in place (an interrupted batch renamed it) to be as durable as the rest."""
        self._folders.add(os.path.dirname(path))

    def write(self, path: Path, data: str | bytes) -> tuple[int, int]:
        """Write a file's temporary; (mtime_ns, size) of the file it becomes."""
        name, stamp = write_temporary(path, data, fsync=False)
        self._pending.append((name, path))
        return stamp

    def commit(self) -> None:
        """Everything written on disk and in place; what is left after an error is discarded.

        Each file is fsynced once all are written, not right after its write (the disk then takes
        them together). Not syncfs(2), a little faster still (7.5 s against 8-9 s for a 200-feed
        poll): it waits for everything dirty on the file system, and an export writing gigabytes
        beside the posts would hold up every poll."""
        pending, self._pending = self._pending, []
        folders, self._folders = self._folders, set()
        renamed = 0
        try:
            for name, _ in pending:
                _fsync(name)
            for name, path in pending:
                _rename_into_place(name, path)
                renamed += 1
            for folder in folders | {os.path.dirname(path) for _, path in pending}:
                _fsync(folder)  # the renames
        finally:
            for name, _ in pending[renamed:]:
                _remove_temporary(name)


def _fsync(path: str) -> None:
    """A file's bytes, or a folder's renames, on disk."""
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _rename_into_place(name: str, path: Path) -> None:
    try:
        os.replace(name, path)  # a rename keeps the file's mtime
    except BaseException:
        _remove_temporary(name)
        raise


def _remove_temporary(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)


def link_atomically(source: Path, path: Path) -> None:
    """Make `path` another name of `source`'s file (a hard link), replacing what it named in one
    rename: readers see the old file or the new one. OSError where the file system has no links."""

    def linked(name: str) -> str:
        os.link(source, name)
        return name

    _rename_into_place(_made_beside(path, linked), path)


def _temporary_beside(path: Path) -> tuple[int, str]:
    """A new private file beside the path, opened to write, and its name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    return _made_beside(path, lambda name: (os.open(name, flags, 0o600), name))


def _made_beside(path: Path, make: Callable[[str], Made]) -> Made:
    """What `make` makes of a free temporary name .<name>.<8 random characters>.tmp in the path's
    folder (as mkstemp picks one, without its per-call set-up: exports write thousands); `make`
    raises FileExistsError for a name that is taken."""
    for _ in range(100):
        name = os.path.join(
            os.path.dirname(path), f".{os.path.basename(path)}.{_NAMES.getrandbits(32):08x}.tmp"
        )
        try:
            return make(name)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))
