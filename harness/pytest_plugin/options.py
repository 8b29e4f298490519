"""The harness options: added in one group, parsed and validated once into a frozen `HarnessOptions`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from harness.profiles import LoadedProfile
    from harness.store import StoreURL

MARKERS = {
    "fidelity": "metric of the fidelity family (Bell state, link process)",
    "entanglement_rate": "metric of the entanglement-rate family",
    "capacity": "channel-capacity metric (C_E, Q1, chi)",
    "logical": "logical-success metric (QEC memory, decoder in the loop)",
    "bench_only": "runs only against a lab bench or its replay",
    "sim_only": "runs only against a simulated device",
}
BUDGET_CHOICES = ("quick", "standard", "release")
DEFAULT_BLOCKS = 6  # as harness.interleave.DEFAULT_BLOCKS (not imported here: the plugin loads lazily)
_T = TypeVar("_T")


def add_options(parser: pytest.Parser) -> None:
    """Add the harness options, all in one group."""
    g = parser.getgroup("qharness", "qharness regression harness")
    g.addoption(
        "--device-profile",
        action="append",
        default=[],
        metavar="NAME|PATH",
        help="device profile to test (repeatable: the suites run once per profile)",
    )
    g.addoption(
        "--firmware-build", default=None, metavar="B", help="build under test (default: the profile's firmware.build)"
    )
    g.addoption(
        "--baseline-build",
        default=None,
        metavar="B",
        help="baseline build (default: the store's marked baseline, then the profile's firmware.baseline)",
    )
    g.addoption(
        "--results-db",
        default=None,
        metavar="PATH|URL",
        help="results store: a SQLite file path, sqlite:///PATH or postgresql://USER@HOST/DB "
        "(default: $QHARNESS_DB, else reports/qharness.db)",
    )
    g.addoption(
        "--lease-timeout",
        default="600",
        metavar="S",
        help="longest wait, in s, for another run's lease on a bench profile before giving up (default 600)",
    )
    g.addoption(
        "--lease-ttl",
        default="60",
        metavar="S",
        help="time-to-live, in s, of this run's bench leases in a PostgreSQL store: a run that dies loses them "
        "this long after its last heartbeat (default 60)",
    )
    _add_measurement_options(g)


def _add_measurement_options(g: pytest.OptionGroup) -> None:
    """The options that shape what is measured: seed, session, logical sampling, budget, alpha, outputs."""
    g.addoption("--harness-seed", default="1", metavar="N", help="seed of every simulated random stream (default 1)")
    g.addoption(
        "--harness-session",
        default="0",
        metavar="N",
        help="session index of this run of a build: a drifting stand-in draws that session's offsets (default 0)",
    )
    g.addoption(
        "--qec-workers",
        default=None,
        metavar="N",
        help="processes that sample logical memories with sinter (default: every core when the budget pays for them)",
    )
    g.addoption(
        "--qec-resume-dir",
        default=None,
        metavar="DIR",
        help="keep each logical memory's sinter CSV here; a run interrupted mid-sampling resumes from it",
    )
    g.addoption(
        "--budget", default="standard", metavar="quick|standard|release", help="measurement budget (default: standard)"
    )
    g.addoption(
        "--alpha", default="0.05", metavar="A", help="family-wise false-alarm rate per profile and run (default 0.05)"
    )
    g.addoption("--harness-summary", default=None, metavar="PATH", help="write a JSON summary of the verdicts")
    g.addoption(
        "--interleave",
        action="store_true",
        default=None,
        help="measure candidate and baseline alternately in ABBA blocks on one device, flashing between runs, and "
        "gate paired block differences (default: on for a bench profile with firmware.flash)",
    )
    g.addoption(
        "--no-interleave",
        dest="interleave",
        action="store_false",
        help="compare with a stored or in-session baseline, also on a bench that can flash",
    )
    g.addoption(
        "--interleave-blocks",
        default=str(DEFAULT_BLOCKS),
        metavar="N",
        help=f"ABBA blocks of an interleaved run, >= 2 (t test on N - 1 df; default {DEFAULT_BLOCKS})",
    )
    g.addoption(
        "--record-session",
        default=None,
        metavar="PATH",
        help="record every instrument exchange of a bench run as JSONL (replay with kind: replay)",
    )


@dataclass(frozen=True)
class HarnessOptions:
    """The harness options of one pytest run, checked once: bad values never reach a fixture."""

    profiles: Mapping[str, LoadedProfile]
    firmware_build: str | None
    baseline_build: str | None
    store_url: StoreURL
    lease_timeout_s: float
    lease_ttl_s: float
    seed: int
    session: int
    qec_workers: int | None
    qec_resume_dir: Path | None
    budget: str
    alpha: float
    # pytest owns `--strict` (all of its strictness checks); a strict harness run also fails on INCONCLUSIVE.
    strict: bool
    summary_path: Path | None
    record_session: str | None
    allure_dir: str | None
    interleave: bool | None = None  # None: each profile's default (`interleaves_by_default`)
    interleave_blocks: int = DEFAULT_BLOCKS

    def interleaves(self, loaded: LoadedProfile) -> bool:
        """Whether profile `loaded` is measured interleaved (ABBA) in this run, when it has a baseline to alternate."""
        from harness.interleave import interleaves_by_default

        if self.interleave is None:
            return interleaves_by_default(loaded.effective(self.firmware_build))
        return self.interleave

    @classmethod
    def from_config(cls, config: pytest.Config) -> HarnessOptions:
        """Parse and check the options and load the profiles; raise pytest.UsageError saying how to fix one."""
        opt = config.option
        seed = _parse(opt.harness_seed, int, "--harness-seed", "an integer, e.g. --harness-seed 7")
        alpha = _parse(opt.alpha, float, "--alpha", "a number in (0, 1), e.g. --alpha 0.05")
        if not 0.0 < alpha < 1.0:
            raise pytest.UsageError(f"--alpha must be in (0, 1), got {opt.alpha}")
        if opt.budget not in BUDGET_CHOICES:
            raise pytest.UsageError(f"--budget must be one of {', '.join(BUDGET_CHOICES)}, got {opt.budget!r}")
        profiles = _load_profiles(opt.device_profile, opt.firmware_build, opt.baseline_build)
        if opt.interleave:
            _check_flashable(profiles.values(), opt.firmware_build, opt.baseline_build)
        return cls(
            profiles=MappingProxyType(profiles),
            firmware_build=opt.firmware_build,
            baseline_build=opt.baseline_build,
            store_url=_check_store(opt.results_db),
            lease_timeout_s=_seconds(opt.lease_timeout, "--lease-timeout", "600", zero_ok=True),
            lease_ttl_s=_seconds(opt.lease_ttl, "--lease-ttl", "60", zero_ok=False),
            seed=seed,
            session=_count(opt.harness_session, "--harness-session", minimum=0),
            qec_workers=None if opt.qec_workers is None else _count(opt.qec_workers, "--qec-workers", minimum=1),
            qec_resume_dir=Path(opt.qec_resume_dir) if opt.qec_resume_dir else None,
            budget=opt.budget,
            alpha=alpha,
            strict=bool(getattr(opt, "strict", False)),
            summary_path=Path(opt.harness_summary) if opt.harness_summary else None,
            record_session=opt.record_session,
            allure_dir=config.getoption("allure_report_dir", default=None),
            interleave=opt.interleave,
            interleave_blocks=_count(opt.interleave_blocks, "--interleave-blocks", minimum=2),
        )


def _check_flashable(profiles: Iterable[LoadedProfile], *builds: str | None) -> None:
    """Raise pytest.UsageError (one line) if --interleave names a profile that cannot flash one of the builds."""
    from harness.interleave import flash_problem

    for loaded in profiles:
        for build in builds:
            problem = flash_problem(loaded.effective(build), "--interleave")
            if problem is not None:
                raise pytest.UsageError(problem)


def _count(text: str, option: str, minimum: int) -> int:
    """An integer option that must be at least `minimum`."""
    value = _parse(text, int, option, f"an integer >= {minimum}, e.g. {option} {max(minimum, 1)}")
    if value < minimum:
        raise pytest.UsageError(f"{option} must be an integer >= {minimum}, got {text}")
    return value


def _parse(text: str, kind: Callable[[str], _T], option: str, expected: str) -> _T:
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{option} must be {expected}; got {text!r}") from None


def _check_store(target: str | None) -> StoreURL:
    """The location of a usable --results-db ($QHARNESS_DB by default), checked once before any device is touched."""
    from harness.store import StoreError, check_store, default_store_url

    try:
        return check_store(target or default_store_url())
    except StoreError as exc:
        raise pytest.UsageError(f"--results-db: {exc}") from None


def _seconds(text: str, option: str, example: str, *, zero_ok: bool) -> float:
    """A duration option in s: a finite number >= 0 (> 0 unless `zero_ok`)."""
    bound = ">= 0" if zero_ok else "> 0"
    value = _parse(text, float, option, f"a number of seconds {bound}, e.g. {option} {example}")
    if not (math.isfinite(value) and (value >= 0 if zero_ok else value > 0)):
        raise pytest.UsageError(f"{option} must be a finite number of seconds {bound}, got {text}")
    return value


def _without_prefix(message: str, ref: str) -> str:
    """A profile error without the profile reference it starts with (the option already names it)."""
    prefix = f"{ref}: "
    return "\n".join(line.removeprefix(prefix) for line in message.splitlines())


def _load_profiles(refs: list[str], *builds: str | None) -> dict[str, LoadedProfile]:
    """Profiles by name; each must exist, be given once, and define every build named on the command line."""
    # Imported here: a pytest run without --device-profile never pays for pydantic and the profile models.
    from harness.profiles import ProfileError, load_profile

    profiles: dict[str, LoadedProfile] = {}
    for ref in refs:
        try:
            loaded = load_profile(ref)
            for build in builds:
                if build is not None:
                    loaded.effective(build)
        except ProfileError as exc:
            raise pytest.UsageError(f"--device-profile {ref}: {_without_prefix(str(exc), ref)}") from None
        if loaded.name in profiles:
            raise pytest.UsageError(f"--device-profile {ref}: profile {loaded.name!r} is given twice")
        profiles[loaded.name] = loaded
    return profiles
