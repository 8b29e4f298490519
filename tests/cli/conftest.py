"""Fixtures of the `qharness` command-line tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_helpers import qharness, run_args


@pytest.fixture(scope="session")
def measured_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """One quick `qharness run` of aer-reference's default build against its measured baseline (row 0)."""
    tmp = tmp_path_factory.mktemp("measured")
    db = tmp / "qharness.db"
    return db, qharness(*run_args(db, tmp), cwd=tmp)
