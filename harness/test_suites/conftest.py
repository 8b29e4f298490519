"""Regression suites of qharness: run them with `pytest test_suites --device-profile NAME`.

Each test names the metric it gates. The harness measures a profile's whole metric family once
(candidate and baseline builds), gates it as one family (docs/statistics.md), and each test asserts its verdict.
"""
