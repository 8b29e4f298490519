"""The state of one pytest session: each profile's ProfileSession, the results store, the bench leases and the
session recorder.

Nothing here needs pytest: `HarnessState(options)` serves a script as well as the plugin's fixtures.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from harness.pytest_plugin.interrupts import TerminateAsInterrupt
from harness.pytest_plugin.options import HarnessOptions

if TYPE_CHECKING:
    from harness.instruments import SessionRecorder
    from harness.interleave_session import InterleavedProfileSession
    from harness.profiles import LoadedProfile, Profile
    from harness.session import ProfileSession
    from harness.store import Lease, LeaseHolder, RunStatus, Store

# The kinds that reserve an instrument: a real bench or an emulated one. A stand-in (aer) and a replay of a
# recorded session touch no instrument, so any number of runs may use them at once.
LEASED_KINDS = ("bench",)


class HarnessState:
    """Everything the plugin keeps for one pytest session; `close()` leaves nothing open."""

    def __init__(self, options: HarnessOptions, session_id: str | None = None) -> None:
        self.options = options
        # Under xdist the controller hands its session id to the workers, so their runs group into one session.
        self.session_id = session_id or uuid.uuid4().hex
        self.families: dict[str, set[str]] = {}
        self.sessions: dict[str, ProfileSession | InterleavedProfileSession] = {}
        self._store: Store | None = None
        self._recorder: SessionRecorder | None = None
        self._terminate = TerminateAsInterrupt()
        # Each (profile, failure cause) met in the session -> the first test that met it (reported once, then skipped).
        self.causes: dict[tuple[str, str], str] = {}
        self.leases: dict[str, Lease] = {}
        self._held = contextlib.ExitStack()

    @property
    def profiles(self) -> Mapping[str, LoadedProfile]:
        """The profiles under test, by name."""
        return self.options.profiles

    def effective(self, name: str) -> Profile:
        """The effective profile of the build under test of profile `name`."""
        return self.profiles[name].effective(self.options.firmware_build)

    def logical_metrics(self, name: str) -> list[str]:
        """The logical-success metrics of profile `name`, one per QEC code of the build under test."""
        return [f"logical_success_{code}" for code in self.effective(name).qec.codes]

    def add_to_family(self, name: str, metric: str) -> None:
        """Include `metric` in the family that profile `name` measures and gates at once."""
        self.families.setdefault(name, set()).add(metric)

    @property
    def recorder(self) -> SessionRecorder | None:
        """The session recorder of --record-session, opened on first use (None without the option)."""
        if self.options.record_session and self._recorder is None:
            from harness.instruments import SessionRecorder

            self._recorder = SessionRecorder(self.options.record_session)
        return self._recorder

    @property
    def store(self) -> Store:
        """The results store, opened on first use."""
        if self._store is None:
            from harness.store import Store

            # SIGTERM ends the session as Ctrl-C does (exit 2); installed first, so the store's handler chains to it.
            self._terminate.install()
            self._store = Store(self.options.store_url)
            # A run killed by SIGTERM/SIGINT is marked aborted; its raw records are already committed.
            self._store.install_abort_handler()
        return self._store

    def benches(self) -> list[str]:
        """The profiles under test that reserve a bench (kind bench), in the order their leases are taken."""
        return sorted(name for name in self.profiles if self.effective(name).kind in LEASED_KINDS)

    def lease_benches(self, on_wait: Callable[[LeaseHolder], None] | None = None) -> None:
        """Take the exclusive lease of every bench under test, waiting up to --lease-timeout for each.

        Sorted order, so two runs that share benches never wait for each other in a cycle. A LeaseTimeoutError,
        an interrupt or any other error gives back the leases already taken before it propagates.
        """
        opts = self.options
        try:
            for name in self.benches():
                lease = self.store.lease(
                    name,
                    ttl_s=opts.lease_ttl_s,
                    timeout_s=opts.lease_timeout_s,
                    run_id=self.session_id,
                    on_wait=on_wait,
                )
                self.leases[name] = self._held.enter_context(lease)
        except BaseException:
            self.release_leases()
            raise

    def lost_lease(self, name: str) -> str | None:
        """Why this run may no longer measure bench `name` exclusively (its lease lapsed), else None."""
        from harness.store import LeaseLostError

        lease = self.leases.get(name)
        try:
            if lease is not None:
                lease.check()
        except LeaseLostError as exc:
            return str(exc)
        return None

    def release_leases(self) -> None:
        """Give back every bench lease this run holds (safe to call again)."""
        self.leases.clear()
        self._held.close()

    def session(self, name: str) -> ProfileSession | InterleavedProfileSession:
        """The session of one profile, created on first use: interleaved when the run interleaves it and it has a
        baseline build to alternate with, else a ProfileSession."""
        if name not in self.sessions:
            from harness.session import ProfileSession

            opts = self.options
            common = {"seed": opts.seed, "budget": opts.budget, "alpha": opts.alpha, "session_id": self.session_id}
            baseline = self._interleaved_baseline(name)
            if baseline is not None:
                from harness.interleave_session import InterleavedProfileSession

                build = opts.firmware_build or self.profiles[name].default_build
                self.sessions[name] = InterleavedProfileSession(
                    self.profiles[name],
                    self.store,
                    build=build,
                    baseline_build=baseline,
                    blocks=opts.interleave_blocks,
                    recorder=self.recorder,
                    **common,
                )
            else:
                self.sessions[name] = ProfileSession(
                    self.profiles[name],
                    self.store,
                    build=opts.firmware_build,
                    baseline_build=opts.baseline_build,
                    recorder=self.recorder,
                    session=opts.session,
                    qec_workers=opts.qec_workers,
                    resume_dir=opts.qec_resume_dir,
                    **common,
                )
            self.sessions[name].family.update(self.families.get(name, ()))
        return self.sessions[name]

    def _interleaved_baseline(self, name: str) -> str | None:
        """The baseline build to alternate with when this run interleaves profile `name`; None measures as usual
        (not interleaved, or no baseline other than the build under test: nothing to compare)."""
        from harness.session import resolve_baseline

        loaded = self.profiles[name]
        if not self.options.interleaves(loaded):
            return None
        build = self.options.firmware_build or loaded.default_build
        baseline = resolve_baseline(loaded, self.store, self.options.baseline_build)
        return baseline if baseline and baseline != build else None

    def finish(self, status: RunStatus | None = None) -> None:
        """Close the devices and finish the runs (with `status` if given, else their own), then the recorder.

        The store stays open to be read.
        """
        for ps in self.sessions.values():
            ps.close(status)
        self.sessions.clear()
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None

    def close(self) -> None:
        """Finish the sessions, give back the bench leases and close the store; safe to call again."""
        self.finish()
        # Only once every device is closed and every run finished: the next run may measure the bench from here.
        self.release_leases()
        if self._store is not None:
            self._store.uninstall_abort_handler()
            self._store.close()
            self._store = None
        self._terminate.uninstall()
