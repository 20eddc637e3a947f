"""``present``: the set attributes of an object, as the request builders read them."""

from __future__ import annotations

import msgspec
import pytest

from podium._present import present


class _Body(msgspec.Struct):
    a: int | None = None
    b: str | None = None
    c: list[int] | None = None
    d: bool | None = None


def test_only_set_attributes_are_given_in_the_order_of_the_names() -> None:
    pick = present(("c", "a", "b", "d"))
    assert pick(_Body(a=0, c=[], d=False)) == {"c": [], "a": 0, "d": False}  # falsy but set
    assert list(pick(_Body(a=1, b="x", c=[2], d=True))) == ["c", "a", "b", "d"]
    assert pick(_Body()) == {}


def test_one_name_is_refused() -> None:
    with pytest.raises(ValueError, match="two names"):
        present(("a",))
