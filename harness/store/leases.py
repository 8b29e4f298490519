"""Bench leases: at most one run measures a bench at a time, across processes and (with PostgreSQL) hosts.

PostgreSQL: a row per bench in the `leases` table, taken with one atomic INSERT ... ON CONFLICT DO UPDATE
WHERE expired, and renewed by a heartbeat thread every TTL/3. Times come from the database server's clock, so
hosts with skewed clocks agree. A holder that dies - killed, its host powered off, its network cut - stops
renewing and loses the lease once the TTL has passed. (A session advisory lock would be released at once when
the holder's process dies, but when its host or network dies the server only notices after TCP keepalive, two
hours by default, and a pooler in transaction mode breaks it; the lease row has neither problem.)

SQLite: an exclusive `flock` on a lock file beside the store (`<store>.leases/<bench>.lock`). The kernel releases
it the moment the holder dies, so no TTL is needed; the holder also writes its row into `leases` so that a
waiting run can say who holds the bench.

A lease is not reentrant (a second lease of the same bench from one process waits like any other run), and a
forked child does not hold its parent's lease: it closes its copy of the lock file at once (never unlocking it),
so the lease still ends when the parent does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from harness.store.connection import Database, upsert
from harness.store.errors import LeaseLostError, LeaseTimeoutError, StoreError
from harness.store.provenance import hostname, utc_now
from harness.store.schema import leases

_EPOCH_JULIAN_DAY = 2440587.5


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds (or last held) a bench: host, pid, run id and since when (ISO-8601 UTC)."""

    bench: str
    host: str
    pid: int
    run_id: str | None
    since: str
    expires_in_s: float | None = field(default=None, compare=False)  # None: held while the process lives

    def describe(self) -> str:
        """Return 'run R (host H, pid P, since T)', the holder as a waiting run's message names it."""
        run = f"run {self.run_id}" if self.run_id else "a run"
        left = self.expires_in_s
        ttl = "" if left is None else f", lease expires in {max(left, 0):.0f} s unless renewed"
        return f"{run} (host {self.host}, pid {self.pid}, since {self.since}{ttl})"


class Lease:
    """A held bench lease; `lost` turns True if its heartbeat could not renew it within the TTL."""

    def __init__(self, holder: LeaseHolder, token: str, ttl_s: float | None) -> None:
        """Record this run as the holder."""
        self.holder = holder
        self.token = token
        self.ttl_s = ttl_s
        self.lost = False

    @property
    def bench(self) -> str:
        """Return the bench this lease is for."""
        return self.holder.bench

    def check(self) -> None:
        """Raise LeaseLostError when the lease is no longer this run's (call before each measurement)."""
        if self.lost:
            raise LeaseLostError(
                f"bench {self.bench!r}: this run's lease was not renewed within its {self.ttl_s:g} s TTL and may "
                "be held by another run; measurements from now on are not exclusive"
            )


def _db_now(c: sa.Connection) -> Any:
    """Return the SQL expression of the database clock in seconds since the epoch."""
    if c.dialect.name == "postgresql":
        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Float)
    return (sa.func.julianday("now") - _EPOCH_JULIAN_DAY) * 86400.0


def _lock_file(db: Database, bench: str) -> Path:
    """Return the lock file of `bench` beside the SQLite store (a readable name plus a hash of the exact key)."""
    assert db.url.path is not None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", bench)[:60]
    digest = hashlib.sha256(bench.encode()).hexdigest()[:10]
    return Path(f"{db.url.path}.leases") / f"{safe}-{digest}.lock"


class _Backend:
    """The lease row shared by both engines: record, read, renew and drop the holder of one bench."""

    def __init__(self, db: Database, bench: str, ttl_s: float) -> None:
        """Prepare to lease `bench` in `db`."""
        self.db, self.bench, self.ttl_s = db, bench, ttl_s

    def _write_row(self, me: LeaseHolder, token: str, only_if_expired: bool) -> bool:
        """Record `me` as the holder (if the current one expired, when asked); return True when the row is ours."""
        with self.db.side_write() as c:
            now = _db_now(c)
            row = {**_identity(me), "token": token, "heartbeat_at": now, "expires_at": now + self.ttl_s}
            where = leases.c.expires_at < now if only_if_expired else None
            got = c.execute(upsert(c, leases, row, ["bench"], where).returning(leases.c.token)).scalar()
        return got == token

    def holder(self) -> LeaseHolder | None:
        """Return the recorded holder of the bench, or None when no row is recorded."""
        with self.db.side_write() as c:
            left = (leases.c.expires_at - _db_now(c)).label("left")
            row = c.execute(sa.select(leases, left).where(leases.c.bench == self.bench)).mappings().first()
        if row is None:
            return None
        return LeaseHolder(self.bench, row["host"], int(row["pid"]), row["run_id"], row["since"], self._left(row))

    def _left(self, row: Any) -> float | None:
        """Return the seconds before the holder's lease expires (None where the lease has no TTL)."""
        return float(row["left"])

    def renew(self, token: str) -> bool:
        """Push the expiry TTL seconds ahead; return False when the row is no longer ours."""
        with self.db.side_write() as c:
            now = _db_now(c)
            stmt = (
                sa.update(leases)
                .where(leases.c.bench == self.bench, leases.c.token == token)
                .values(heartbeat_at=now, expires_at=now + self.ttl_s)
            )
            return c.execute(stmt).rowcount == 1

    def drop(self, token: str) -> None:
        """Delete the row if it is still ours."""
        with self.db.side_write() as c:
            c.execute(sa.delete(leases).where(leases.c.bench == self.bench, leases.c.token == token))


class _TableLease(_Backend):
    """PostgreSQL: the row itself is the lease, taken only when free or expired."""

    heartbeat = True

    def try_take(self, me: LeaseHolder, token: str) -> bool:
        """Take the lease if nobody holds it or its holder's TTL has passed; return True when taken."""
        return self._write_row(me, token, only_if_expired=True)

    def release(self, token: str) -> None:
        """Give the lease back."""
        self.drop(token)


class _FlockLease(_Backend):
    """SQLite: the kernel's flock is the lease; the row only says who holds it."""

    heartbeat = False

    def __init__(self, db: Database, bench: str, ttl_s: float) -> None:
        """Prepare the lock file of `bench`."""
        super().__init__(db, bench, ttl_s)
        self.path = _lock_file(db, bench)
        self._fd: int | None = None
        _HELD.add(self)

    def forget_in_child(self) -> None:
        """In a forked child: close the inherited descriptor without unlocking (the parent still holds the lock)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def try_take(self, me: LeaseHolder, token: str) -> bool:
        """Take the flock without blocking; return True when taken (and then record `me`)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o664)
        except OSError as exc:
            raise StoreError(f"bench lease {self.bench!r}: cannot open lock file {self.path} ({exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        try:
            self._write_row(me, token, only_if_expired=False)
        except BaseException:
            self.release(token)
            raise
        return True

    def _left(self, row: Any) -> float | None:
        """The flock has no TTL."""
        return None

    def release(self, token: str) -> None:
        """Delete our row, then let go of the flock."""
        try:
            self.drop(token)
        finally:
            if self._fd is not None:
                os.close(self._fd)  # closing the only descriptor releases the flock
                self._fd = None


# flock belongs to the open file, which fork shares: a child that kept its copy would keep the lease alive
# after the parent died. The child closes its copies at once.
_HELD: weakref.WeakSet[_FlockLease] = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [lease.forget_in_child() for lease in list(_HELD)])


def _identity(h: LeaseHolder) -> dict[str, Any]:
    """Return the row columns naming holder `h`."""
    return {"bench": h.bench, "host": h.host, "pid": h.pid, "run_id": h.run_id, "since": h.since}


def _wait(
    backend: _TableLease | _FlockLease,
    me: LeaseHolder,
    token: str,
    timeout_s: float,
    on_wait: Callable[[LeaseHolder], None] | None,
    poll_s: float,
) -> LeaseHolder:
    """Poll until the lease is ours and return us as its holder; tell `on_wait` each new holder on the way."""
    deadline = time.monotonic() + timeout_s
    told: LeaseHolder | None = None
    while True:
        me = dataclasses.replace(me, since=utc_now())
        if backend.try_take(me, token):
            return me
        holder = backend.holder()
        if holder is not None and holder != told:
            told = holder
            if on_wait is not None:
                on_wait(holder)
        left = deadline - time.monotonic()
        if left <= 0:
            who = holder.describe() if holder is not None else "another run (not yet recorded)"
            raise LeaseTimeoutError(
                f"bench {me.bench!r} is still leased by {who} after waiting {timeout_s:g} s; "
                "run again when it is free, or wait longer with --lease-timeout"
            )
        time.sleep(min(poll_s, left))


def _heartbeat(backend: _TableLease, lease: Lease, stop: threading.Event) -> None:
    """Renew the lease every TTL/3 until stopped; mark it lost when it cannot be renewed within the TTL."""
    ttl = backend.ttl_s
    renewed = time.monotonic()
    while not stop.wait(ttl / 3):
        try:
            ours = backend.renew(lease.token)
        except (sa.exc.SQLAlchemyError, StoreError):
            ours = None  # the server is unreachable for now: keep trying until the TTL runs out
        if ours:
            renewed = time.monotonic()
        elif ours is False or time.monotonic() - renewed > ttl:
            lease.lost = True
            return


@contextlib.contextmanager
def acquire_lease(
    db: Database,
    bench: str,
    *,
    ttl_s: float,
    timeout_s: float,
    run_id: str | None,
    on_wait: Callable[[LeaseHolder], None] | None,
    poll_s: float,
) -> Iterator[Lease]:
    """Hold `bench`'s exclusive lease for the block (see the module doc), waiting up to `timeout_s` seconds."""
    if ttl_s <= 0 or timeout_s < 0 or poll_s <= 0:
        raise StoreError(f"bench lease {bench!r}: TTL and poll must be > 0 s and the timeout >= 0 s")
    backend = _FlockLease(db, bench, ttl_s) if db.url.is_sqlite else _TableLease(db, bench, ttl_s)
    token = uuid.uuid4().hex
    me = _wait(backend, LeaseHolder(bench, hostname(), os.getpid(), run_id, ""), token, timeout_s, on_wait, poll_s)
    lease = Lease(me, token, ttl_s if backend.heartbeat else None)
    stop = threading.Event()
    beat = None
    if isinstance(backend, _TableLease):
        beat = threading.Thread(target=_heartbeat, args=(backend, lease, stop), name=f"lease-{bench}", daemon=True)
        beat.start()
    try:
        yield lease
    finally:
        stop.set()
        if beat is not None:
            beat.join()
        backend.release(token)
