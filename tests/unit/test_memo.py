"""memoized: computed once per instance, invisible to equality, hashing and replace()."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from pxelab.core.memo import memoized

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Point:
    x: int
    calls: list[int] = field(compare=False)  # what double() was computed for

    @memoized
    def double(self) -> int:
        self.calls.append(self.x)
        return 2 * self.x


def test_computed_once_and_not_a_field() -> None:
    calls: list[int] = []
    point = Point(3, calls)
    assert point.double == 6 and point.double == 6
    assert calls == [3]
    assert point == Point(3, calls) and hash(point) == hash(Point(3, []))
    moved = replace(point, x=4)
    assert moved.double == 8 and calls == [3, 4]
    assert isinstance(Point.double, memoized)
