"""A metric test's verdict: measured and gated at setup time, asserted in the test body.

A metric that could not be measured is a pytest ERROR at setup, never a REGRESSION. One cause is reported once:
the first test that meets it errors with the one-line cause, and later tests that meet the same cause skip naming
that test (a broken bench is quarantined, as labgrid does, instead of repeating its failure per test).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import pytest

from harness.errors import NotSupportedError
from harness.metrics import metric_spec

if TYPE_CHECKING:
    from harness.gate import Comparison
    from harness.pytest_plugin.options import HarnessOptions
    from harness.session import ProfileSession


def meet_cause(causes: dict[tuple[str, str], str], profile: str, cause: str, test_id: str) -> NoReturn:
    """Error the first test of a profile's cause with its one line (no traceback); skip later tests naming that test.

    The skip does not repeat the cause: it is printed once, with the first test's error (and in the verdict table).
    `causes` maps each (profile, cause) met so far in the session to the id of the first test that met it.
    """
    first = causes.setdefault((profile, cause), test_id)
    if first == test_id:
        pytest.fail(cause, pytrace=False)
    pytest.skip(f"same cause as {first}")


def comparison_or_skip(session: ProfileSession, metric: str) -> Comparison:
    """The gate's comparison of `metric` (the family is measured first if needed); skip if the device cannot."""
    try:
        return session.comparison(metric)
    except NotSupportedError as exc:
        pytest.skip(str(exc))


def verdict_of(
    session: ProfileSession,
    metric: str,
    options: HarnessOptions,
    causes: dict[tuple[str, str], str],
    test: pytest.Item,
) -> VerdictCheck:
    """The verdict check of `metric` for the running `test`, measured and gated now.

    A metric that could not be measured meets its cause: the first test of a cause errors, later ones skip.
    """
    from harness.gate import Verdict

    metric_spec(metric)  # an unknown name fails before anything is measured
    comp = comparison_or_skip(session, metric)
    if options.allure_dir:
        from harness.pytest_plugin import allure

        allure.label(session, comp, getattr(getattr(test, "callspec", None), "params", {}))
    if comp.verdict is Verdict.ERROR:
        meet_cause(causes, session.loaded.name, comp.error or f"{metric}: no estimate", test.nodeid)
    return VerdictCheck(comp, session, options.strict, bool(options.allure_dir))


class VerdictCheck:
    """Asserts a metric's verdict: REGRESSION fails, INCONCLUSIVE fails under --strict."""

    def __init__(self, comparison: Comparison, session: ProfileSession, strict: bool, allure: bool) -> None:
        self.comparison = comparison
        self.session = session
        self.strict = strict
        self.allure = allure

    def check(self) -> None:
        """Fail the test on REGRESSION (and on INCONCLUSIVE with --strict)."""
        from harness.gate import Verdict

        comp = self.comparison
        if self.allure:
            from harness.pytest_plugin import allure

            # In the test body, not the fixture: Allure files setup-time attachments under the fixture.
            allure.attach(self.session, comp)
        message = comp.message(self.session.build, self.session.baseline_build)
        if comp.verdict is Verdict.REGRESSION:
            pytest.fail(message, pytrace=False)
        if comp.verdict is Verdict.INCONCLUSIVE and self.strict:
            pytest.fail(f"{message} (--strict: INCONCLUSIVE fails)", pytrace=False)
