"""The results store: runs, raw records, metrics, baselines and bench leases, in SQLite or PostgreSQL.

- `url`: which database a --results-db value names (path, sqlite:///path, postgresql://...), $QHARNESS_DB,
  and keeping passwords out of messages and provenance;
- `schema`: the tables (SQLAlchemy Core), SCHEMA_VERSION and the RunStatus values;
- `versions`: the stored schema version and the Alembic upgrade (`migrations/`), on open or by `qharness db`;
- `connection`: this process's connection (SQLite: WAL, fair BEGIN IMMEDIATE; reconnect after fork);
- `signals`: mark the open runs aborted on SIGTERM/SIGINT, then chain to the previous handler;
- `provenance`: tool versions, git sha, host, pid, UTC timestamps and the stored JSON;
- `leases`: the exclusive lease of a bench (PostgreSQL: lease row with heartbeat and TTL; SQLite: flock);
- `check`: is a --results-db value usable? (checked before a run touches a device; never writes);
- `store`: the `Store` facade and every query on the tables.
"""

from harness.store.check import check_store
from harness.store.connection import BUSY_TIMEOUT_MS
from harness.store.errors import LeaseLostError, LeaseTimeoutError, StoreError
from harness.store.leases import Lease, LeaseHolder
from harness.store.provenance import git_sha, pid_alive, tool_versions, utc_now
from harness.store.schema import SCHEMA_VERSION, RunStatus
from harness.store.store import RunRow, Store
from harness.store.url import StoreURL, default_store_url, parse_store_url, redact, store_path

__all__ = [
    "BUSY_TIMEOUT_MS",
    "SCHEMA_VERSION",
    "Lease",
    "LeaseHolder",
    "LeaseLostError",
    "LeaseTimeoutError",
    "RunRow",
    "RunStatus",
    "Store",
    "StoreError",
    "StoreURL",
    "check_store",
    "default_store_url",
    "git_sha",
    "parse_store_url",
    "pid_alive",
    "redact",
    "store_path",
    "tool_versions",
    "utc_now",
]
