"""A metric test's verdict: measured and gated at setup time, asserted in the test body.

A device fault raises during setup, so it is a pytest ERROR and never a REGRESSION.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from harness.errors import NotSupportedError
from harness.metrics import metric_spec

if TYPE_CHECKING:
    from harness.gate import Comparison
    from harness.pytest_plugin.options import HarnessOptions
    from harness.session import ProfileSession


class MeasurementError(RuntimeError):
    """A metric could not be measured (instrument fault, identity mismatch): reported as a pytest ERROR."""


def comparison_or_skip(session: ProfileSession, metric: str) -> Comparison:
    """The gate's comparison of `metric` (the family is measured first if needed); skip if the device cannot."""
    try:
        return session.comparison(metric)
    except NotSupportedError as exc:
        pytest.skip(str(exc))


def verdict_of(session: ProfileSession, metric: str, options: HarnessOptions) -> VerdictCheck:
    """The verdict check of `metric`, measured and gated now; raise MeasurementError when it could not be measured."""
    from harness.gate import Verdict

    metric_spec(metric)  # an unknown name fails before anything is measured
    comp = comparison_or_skip(session, metric)
    if options.allure_dir:
        from harness.pytest_plugin import allure

        allure.label(session, comp)
    if comp.verdict is Verdict.ERROR:
        raise MeasurementError(f"{metric}: {comp.error}")
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
