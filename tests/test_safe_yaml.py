"""YAML read with bounds: aliases, nesting and values the constructors choke on."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from feedhub.safe_yaml import YamlError, expanded_size, flat_mapping, flow_depth, load_yaml
from tests.helpers import SEEDS, corpus_posts

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefg", "bcdefgh", strict=True)
        ),
        "date: *h",
    ]
)


def test_plain_documents_load_as_pyyaml_loads_them() -> None:
    text = "title: x\ndate: 2022-04-15 11:35:24\ntags: [a, b]\nbase: &b {k: 1}\nother: *b\n"
    value = load_yaml(text, 100)
    assert value["tags"] == ["a", "b"] and value["other"] == {"k": 1}
    assert load_yaml("", 10) is None


def test_an_alias_bomb_is_refused_before_anything_is_built() -> None:
    assert len(BOMB) < 500
    with pytest.raises(YamlError, match="expands to more than 10,000 values"):
        load_yaml(BOMB, 10_000)


def test_modest_aliases_are_fine_and_counted_per_use() -> None:
    text = "d: &d {a: 1, b: 2}\n" + "".join(f"s{n}: *d\n" for n in range(10))
    assert len(load_yaml(text, 1_000)) == 11
    with pytest.raises(YamlError):
        load_yaml(text, 30)


def test_a_node_holding_itself_expands_without_end() -> None:
    with pytest.raises(YamlError, match="expands"):
        load_yaml("k: &a [1, *a]", 1_000_000)


def test_deep_nesting_is_refused_before_libyaml_can_crash_on_it() -> None:
    # libyaml's composer dies with a segmentation fault past about 50,000 levels
    with pytest.raises(YamlError, match="nests 100000 levels deep"):
        load_yaml("a: " + "[" * 100_000 + "]" * 100_000, 10)
    assert flow_depth('title: \'[[[[[[\' \nx: "{{{{\\""\ny: [[1]]') == 2  # quoted brackets do not count


@pytest.mark.parametrize(
    "text",
    [
        "date: 2022-02-30",
        "date: 2022-13-01",
        "x: !!int zz",
        "x: !!float zz",
        "x: !!timestamp soon",
        "x: " + "1" * 5_000,  # int() refuses more than 4,300 decimal digits
        "x: [unclosed",
        "? [1, 2]\n: v",
    ],
)
def test_values_the_constructors_choke_on_are_yaml_errors(text: str) -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(text, 1_000)
    assert len(str(caught.value)) < 300


def test_error_lines_count_from_where_the_document_starts() -> None:
    with pytest.raises(YamlError, match=r"^line 12, column"):
        load_yaml("a: 1\nb: [x\nc: 2\n", 100, first_line=10)


def test_expanded_size_is_linear_in_the_document() -> None:
    import yaml

    size = expanded_size(yaml.compose(BOMB, Loader=yaml.CSafeLoader), 10**12)
    assert size > 100_000_000  # 9^8 lists of 9, measured without building them


# Lines the flat reading may take or leave: keys the resolver types (yes, 2022), values of every
# shape with the characters that make YAML tokens, quotes, escapes, comments and odd line breaks.
FLAT_KEYS = st.sampled_from(["title", "date", "a_b", "last-modified", "yes", "on", "Null", "2022", "x1"])
TRICKY = st.text(
    st.sampled_from(list("ab 1.:-#?[]{},&*!|>'\"%@`~=<\\\t\r\x85\u2028\ufeff中0xe+")), max_size=12
)
PLAIN_TEXT = st.text(st.sampled_from(list("ab 1.:-#,[]'\"中")), min_size=1, max_size=12)
FLAT_VALUES = st.one_of(
    TRICKY,
    PLAIN_TEXT,
    TRICKY.map(lambda text: f'"{text}"'),
    PLAIN_TEXT.map(lambda text: f"'{text}'"),
    st.sampled_from(["2022-04-15", "2022-02-30", "2021-12-16 22:33:36 +0800", "2021-12-16 22:33:36 +08:00"]),
    st.sampled_from(["1", "-1", "0x1f", "1:20", "1.5", ".inf", "yes", "Off", "~", "null", "<<", "="]),
)
KEY_LINES = st.tuples(FLAT_KEYS, st.sampled_from([": ", ": ", ":", ":  ", " : "]), FLAT_VALUES).map("".join)
ODD_LINES = st.sampled_from(["", "# a comment", "- item", "  nested: 1", "---", "...", "%YAML 1.1"])
FLAT_LINES = st.integers(0, 9).flatmap(lambda draw: ODD_LINES if draw == 0 else KEY_LINES)


@settings(max_examples=2000, deadline=None)
@given(st.lists(FLAT_LINES, min_size=1, max_size=3).map("\n".join))
def test_a_flat_mapping_reads_as_the_parser_reads_it(text: str) -> None:
    flat = flat_mapping(text)
    if flat is None:
        return
    assert flat == yaml.load(text, Loader=yaml.CSafeLoader)
    assert list(flat) == list(yaml.load(text, Loader=yaml.CSafeLoader))  # in the same order


def test_the_front_matter_of_real_posts_is_read_flat() -> None:
    texts = [path.read_text("utf-8", "replace") for path in [*SEEDS.glob("*.txt"), *corpus_posts().glob("*")]]
    fronts = [
        text.split("---\n")[1] for text in texts if text.startswith("---\n") and text.count("---\n") > 1
    ]
    flat = [flat_mapping(front) for front in fronts]
    assert len(fronts) > 100 and sum(value is not None for value in flat) >= 0.9 * len(fronts)
    for front, value in zip(fronts, flat, strict=True):
        if value is not None:
            assert value == yaml.load(front, Loader=yaml.CSafeLoader)
