"""The store tests' engine fixtures (SQLite and a real PostgreSQL server) for tests outside tests/store.

They are tests/store/conftest.py's own fixtures, loaded from that file, so every directory gets the same server
(the one QHARNESS_TEST_PG names, else a throwaway one) and the same one-schema-per-test isolation. A test module
loads them as a plugin:

    pytest_plugins = ["pg_engines"]
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_STORE_TESTS = Path(__file__).resolve().parent / "store"
if str(_STORE_TESTS) not in sys.path:
    sys.path.insert(0, str(_STORE_TESTS))  # the conftest imports pg_server from beside it

_spec = importlib.util.spec_from_file_location("store_engines", _STORE_TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_engines = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_engines)

pg_server = _engines.pg_server
pg_database = _engines.pg_database
pg_url = _engines.pg_url
store_url = _engines.store_url

__all__ = ["pg_database", "pg_server", "pg_url", "store_url"]
