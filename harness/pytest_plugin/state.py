"""The state of one pytest session: each profile's ProfileSession, the results store and the session recorder.

Nothing here needs pytest: `HarnessState(options)` serves a script as well as the plugin's fixtures.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from harness.pytest_plugin.interrupts import TerminateAsInterrupt
from harness.pytest_plugin.options import HarnessOptions

if TYPE_CHECKING:
    from harness.instruments import SessionRecorder
    from harness.profiles import LoadedProfile, Profile
    from harness.session import ProfileSession
    from harness.store import RunStatus, Store


class HarnessState:
    """Everything the plugin keeps for one pytest session; `close()` leaves nothing open."""

    def __init__(self, options: HarnessOptions, session_id: str | None = None) -> None:
        self.options = options
        # Under xdist the controller hands its session id to the workers, so their runs group into one session.
        self.session_id = session_id or uuid.uuid4().hex
        self.families: dict[str, set[str]] = {}
        self.sessions: dict[str, ProfileSession] = {}
        self._store: Store | None = None
        self._recorder: SessionRecorder | None = None
        self._terminate = TerminateAsInterrupt()
        # Each (profile, failure cause) met in the session -> the first test that met it (reported once, then skipped).
        self.causes: dict[tuple[str, str], str] = {}

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

    def session(self, name: str) -> ProfileSession:
        """The ProfileSession of one profile, created on first use."""
        if name not in self.sessions:
            from harness.session import ProfileSession

            opts = self.options
            self.sessions[name] = ProfileSession(
                self.profiles[name],
                self.store,
                build=opts.firmware_build,
                baseline_build=opts.baseline_build,
                seed=opts.seed,
                budget=opts.budget,
                alpha=opts.alpha,
                session_id=self.session_id,
                recorder=self.recorder,
            )
            self.sessions[name].family.update(self.families.get(name, ()))
        return self.sessions[name]

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
        """Finish the sessions and close the store; safe to call again."""
        self.finish()
        if self._store is not None:
            self._store.uninstall_abort_handler()
            self._store.close()
            self._store = None
        self._terminate.uninstall()
