from __future__ import annotations

import gzip
import threading

from feedhub.cache import Representation, ResponseCache


def representation(body: bytes) -> Representation:
    return Representation(body, "text/plain", None)


def test_etags_are_strong_and_come_from_the_body() -> None:
    one, same, other = representation(b"abc"), representation(b"abc"), representation(b"abd")
    assert one.etag == same.etag != other.etag
    assert one.etag.startswith('"') and not one.etag.startswith("W/")
    assert one.gzip_etag != one.etag
    assert gzip.decompress(one.gzipped()) == b"abc"
    assert one.gzipped() == same.gzipped()  # no timestamp in the gzip header


def test_a_new_version_misses_and_rebuilds() -> None:
    cache = ResponseCache()
    builds = []

    def build() -> Representation:
        builds.append(1)
        return representation(f"build {len(builds)}".encode())

    assert cache.get_or_build("feed", 1, build).body == b"build 1"
    assert cache.get_or_build("feed", 1, build).body == b"build 1"
    assert cache.get_or_build("feed", 2, build).body == b"build 2"
    assert len(builds) == 2
    assert cache.get_or_build("missing", 1, lambda: None) is None


def test_least_recently_used_entries_go_first() -> None:
    cache = ResponseCache(max_bytes=2 * 2 * 100)  # room for two 100-byte bodies
    for key in ("a", "b"):
        cache.get_or_build(key, 1, lambda: representation(b"x" * 100))
    cache.get_or_build("a", 1, lambda: representation(b"rebuilt"))  # touch a
    cache.get_or_build("c", 1, lambda: representation(b"y" * 100))
    assert cache.get_or_build("a", 1, lambda: representation(b"rebuilt")).body == b"x" * 100
    assert cache.get_or_build("b", 1, lambda: representation(b"rebuilt")).body == b"rebuilt"


def test_concurrent_misses_build_once() -> None:
    cache = ResponseCache()
    builds = []
    start = threading.Barrier(8)

    def build() -> Representation:
        builds.append(1)
        return representation(b"feed")

    def fetch() -> None:
        start.wait()
        cache.get_or_build("feed", 1, build)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
