"""A missing host capability is a skip, and a failure under --pxelab-strict (what CI runs).

Each way a test can say what it needs goes through the plugin: the marker, the
function, and a HostCapabilityError from pxelab itself (in a fixture or the test).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit
pytest_plugins = ["pytester"]

NEEDS = """
import pytest

from pxelab.core.errors import HostCapabilityError
from pxelab.pytest_plugin import pxelab_requires

TOOL = "pxelab-no-such-tool"


@pytest.mark.pxelab_requires(tools=[TOOL])
def test_marker():
    pass


def test_function():
    pxelab_requires(tools=[TOOL], hint="apt-get install it")


@pytest.fixture
def lab():
    raise HostCapabilityError("no lab here")


def test_fixture(lab):
    pass


def test_present():
    pxelab_requires(tools=["sh"])
"""


def test_missing_capability_skips(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NEEDS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["*pxelab-no-such-tool*"])


def test_missing_capability_fails_under_strict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NEEDS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--pxelab-strict")
    # A marker or a fixture fails in setup (an error), the function in the test (a failure).
    result.assert_outcomes(passed=1, failed=1, errors=2)
    result.stdout.fnmatch_lines(["*host capability missing*pxelab-no-such-tool*"])
