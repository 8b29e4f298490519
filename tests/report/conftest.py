"""Fixtures of the report tests: one realistic store (see report_store.py) and its report, built once."""

from __future__ import annotations

import pytest
from report_store import RELEASE, ReleaseStore, fill_store

from harness.store import Store


@pytest.fixture(scope="session")
def release_store(tmp_path_factory: pytest.TempPathFactory) -> ReleaseStore:
    """A filled results store shared (read-only) by the report tests."""
    return fill_store(tmp_path_factory.mktemp("store") / "qharness.db")


@pytest.fixture(scope="session")
def release_report(release_store: ReleaseStore, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The report of release 2.5.0-rc1 built once from the shared store: (ReportResult, out_dir)."""
    from harness.report import build_report

    out = tmp_path_factory.mktemp("report") / RELEASE
    with Store(release_store.path) as store:
        result = build_report(store, RELEASE, out)
    return result, out
