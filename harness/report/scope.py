"""Which profiles and runs a release report holds: the runs of the release's build, or each profile's newest run."""

from __future__ import annotations

from harness.report.data import ProfileReport, ReportError, collect_profile, is_candidate
from harness.report.versions import order_builds
from harness.store import Store

# The release name of a report of each profile's newest candidate run, whatever its build (`qharness run --report`).
LATEST = "latest"


def release_build(release: str, builds: list[str] | None) -> str | None:
    """Return the build a report is of: the last of `builds`, else `release`; None for the latest runs."""
    if builds:
        if release not in (LATEST, builds[-1]):
            raise ReportError(
                f"--builds ends with {builds[-1]!r} but --release is {release!r}; the last of --builds is the "
                f"release build, so end --builds with {release!r}"
            )
        return builds[-1]
    return None if release == LATEST else release


def chosen_profiles(store: Store, profiles: list[str] | None) -> list[str]:
    """Return the profiles to report: those asked for (all known, else ReportError), or every profile of the store."""
    known = store.profiles()
    if not profiles:
        return known
    unknown = [p for p in profiles if p not in known]
    if unknown:
        raise ReportError(
            f"--profile: {', '.join(unknown)} not in results store {store.path} (known: {', '.join(known) or 'none'})"
        )
    return list(dict.fromkeys(profiles))


def _candidate_builds(store: Store, profile: str | None = None) -> list[str]:
    """Return the builds with a candidate run (of one profile, or of any), in build order."""
    return order_builds(r.build for r in store.runs(profile) if is_candidate(r))


def _in_release(store: Store, profiles: list[str], build: str, asked: bool) -> list[str]:
    """Return the profiles with a candidate run of `build`; an asked-for profile without one is a ReportError."""
    found = [p for p in profiles if any(is_candidate(r) for r in store.runs(p, build))]
    missing = [p for p in profiles if p not in found]
    if asked and missing:
        builds = ", ".join(_candidate_builds(store, missing[0])) or "none"
        raise ReportError(
            f"--profile {missing[0]}: no candidate run of build {build!r} in results store {store.path} "
            f"(its builds: {builds}); choose another --release or drop the --profile"
        )
    if not found:
        raise ReportError(
            f"no profile in results store {store.path} has a candidate run of the release build {build!r} "
            f"(builds with candidate runs: {', '.join(_candidate_builds(store)) or 'none'}); pass one as --release"
        )
    return found


def collect_release(
    store: Store, release: str, profiles: list[str] | None = None, builds: list[str] | None = None
) -> tuple[list[ProfileReport], list[str]]:
    """Return the report data of each profile in the release and why any of them was skipped.

    A named release holds only the profiles with a candidate run of its build (`--profile` narrows them further);
    the release `latest` holds every profile, each at its newest candidate run.
    """
    build = release_build(release, builds)
    chosen = chosen_profiles(store, profiles)
    if build is not None:
        chosen = _in_release(store, chosen, build, bool(profiles))
    reports, skipped = [], []
    for p in chosen:
        try:
            reports.append(collect_profile(store, p, builds, build))
        except ReportError as exc:
            # Without --profile, a profile whose release run is unfinished is noted, not fatal.
            if profiles:
                raise
            skipped.append(str(exc))
    if not reports:
        raise ReportError(
            f"results store {store.path} has no finished candidate runs to report"
            + (f" ({'; '.join(skipped)})" if skipped else "")
        )
    return reports, skipped
