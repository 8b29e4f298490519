"""The plugin leaves other suites alone, validates its options, and unloads cleanly."""

import pytest

UNRELATED = """
def test_addition():
    assert 1 + 1 == 2
"""


def test_without_profile_only_options_and_markers(pytester: pytest.Pytester):
    pytester.makepyfile(test_unrelated=UNRELATED)
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.fidelity:*", "@pytest.mark.bench_only:*", "@pytest.mark.sim_only:*"])
    helptext = pytester.runpytest("--help")
    helptext.stdout.fnmatch_lines(
        ["qharness regression harness:", "*--device-profile=NAME|PATH*", "*--harness-summary=PATH*"]
    )


def test_suites_skip_with_reason_without_profile(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_suite="""
        import pytest

        @pytest.mark.parametrize("metric", ["bell_fidelity"])
        def test_metric(harness_profile, metric, verdict):
            verdict.check()
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs --device-profile NAME|PATH*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "2"], "*--alpha must be in (0, 1), got 2*"),
        (["--alpha", "x"], "*--alpha must be a number in (0, 1)*"),
        (["--budget", "huge"], "*--budget must be one of quick, standard, release, got 'huge'*"),
        (["--harness-seed", "1.5"], "*--harness-seed must be an integer*"),
        (["--harness-session", "-1"], "*--harness-session must be an integer >= 0, got -1*"),
        (["--qec-workers", "0"], "*--qec-workers must be an integer >= 1, got 0*"),
        (["--qec-workers", "two"], "*--qec-workers must be an integer >= 1*; got 'two'*"),
        (["--device-profile", "no-such-profile"], "ERROR: --device-profile no-such-profile: no profile named *"),
        (["--firmware-build", "9.9.9"], "*--device-profile aer-reference:*9.9.9*2.3.0*"),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args, message):
    pytester.makepyfile(test_unrelated=UNRELATED)
    if "--device-profile" not in args:
        args = ["--device-profile", "aer-reference", *args]
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()
    assert [line for line in result.stderr.lines if line.strip()] == [result.stderr.lines[0]], "one line"
    if "--device-profile" in args:
        ref = args[args.index("--device-profile") + 1]
        assert f"{ref}: {ref}:" not in result.stderr.str(), "the profile is named once"


def test_unloads_cleanly(pytester: pytest.Pytester):
    pytester.makepyfile(test_unrelated=UNRELATED)
    result = pytester.runpytest_subprocess("-p", "no:qharness")
    result.assert_outcomes(passed=1)
    unknown = pytester.runpytest_subprocess("-p", "no:qharness", "--device-profile", "aer-reference")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["*unrecognized arguments: --device-profile*"])


def test_warns_once_when_the_runtime_sampler_path_is_loaded(pytester: pytest.Pytester):
    # A module of that name on the path (the real package is optional): the plugin only needs to see it loaded.
    pytester.makepyfile(qiskit_ibm_runtime="class SamplerV2:\n    pass\n")
    pytester.makeconftest("from qiskit_ibm_runtime import SamplerV2  # a user's suite on the runtime path\n")
    pytester.makepyfile(
        test_suite="""
        import pytest

        @pytest.mark.parametrize("metric", ["bell_fidelity", "qber_z"])
        def test_metric(harness_profile, metric):
            assert metric
        """
    )
    result = pytester.runpytest_subprocess("--device-profile", "aer-reference", "-W", "always")
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("SamplerV2 on a local simulator is a deprecated path") == 1
    quiet = pytester.runpytest_subprocess("-W", "always")  # no profile: the plugin stays out of the way
    quiet.assert_outcomes(skipped=2)
    assert "SamplerV2" not in quiet.stdout.str()
