"""YAML read with bounds: aliases, nesting and values the constructors choke on."""

from __future__ import annotations

import pytest

from feedhub.safe_yaml import YamlError, expanded_size, flow_depth, load_yaml

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
