"""The results store: runs, raw records, metrics and baselines of every measurement, in one SQLite file.

- `schema`: the tables, SCHEMA_VERSION, the RunStatus values and the version check on open;
- `connection`: this process's connection (WAL, fair BEGIN IMMEDIATE write transactions, reconnect after fork);
- `signals`: mark the open runs aborted on SIGTERM/SIGINT, then chain to the previous handler;
- `provenance`: tool versions, git sha, host, pid, UTC timestamps and the stored JSON;
- `check`: is a --results-db value usable? (checked before a run touches a device; never writes);
- `store`: the `Store` facade and every query on the tables.
"""

from harness.store.check import check_store, store_path
from harness.store.connection import BUSY_TIMEOUT_MS
from harness.store.errors import StoreError
from harness.store.provenance import git_sha, pid_alive, tool_versions, utc_now
from harness.store.schema import SCHEMA_VERSION, RunStatus
from harness.store.store import RunRow, Store

__all__ = [
    "BUSY_TIMEOUT_MS",
    "SCHEMA_VERSION",
    "RunRow",
    "RunStatus",
    "Store",
    "StoreError",
    "check_store",
    "git_sha",
    "pid_alive",
    "store_path",
    "tool_versions",
    "utc_now",
]
