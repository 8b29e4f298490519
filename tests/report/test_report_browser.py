"""index.html in a real headless Chromium from file://: no console errors, every plot rendered, not blank."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from report_store import PROFILES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1300,2000",
)


# Debian/Ubuntu packages of each part (chromium-driver pulls in chromium).
PACKAGES = {"Chromium": "chromium", "chromedriver": "chromium-driver"}


def missing_browser(chromium: str, chromedriver: str) -> str | None:
    """Return why a headless Chromium cannot run: exactly the parts not installed, and how to install them."""
    missing = {
        name: path for name, path in (("Chromium", chromium), ("chromedriver", chromedriver)) if not Path(path).exists()
    }
    if not missing:
        return None
    found = " and ".join(f"{name} ({path})" for name, path in missing.items())
    verb = "is" if len(missing) == 1 else "are"
    return f"{found} {verb} not installed; apt-get install {' '.join(PACKAGES[n] for n in missing)}"


def _distinct_colours(png: bytes) -> tuple[int, float]:
    """Return the number of distinct RGB colours of a PNG and the fraction of pixels that are not white."""
    from matplotlib.image import imread

    img = imread(io.BytesIO(png), format="png")[..., :3]
    rgb = np.round(img * 255).astype(np.uint8).reshape(-1, 3)
    distinct = np.unique(rgb, axis=0).shape[0]
    not_white = float(np.mean(np.any(rgb < 250, axis=1)))
    return distinct, not_white


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A headless Chromium driven by chromedriver, with a fresh profile directory."""
    reason = missing_browser(CHROMIUM, CHROMEDRIVER)
    if reason is not None:
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is needed to drive Chromium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_renders_in_chromium(browser: object, release_report: tuple) -> None:
    result, _ = release_report
    driver = browser
    driver.get(result.index_html.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    assert driver.title.startswith("qharness release 2.5.0-rc1: REGRESSION")

    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert severe == []

    sizes = driver.execute_script(
        """
        const els = [...document.querySelectorAll('img'), ...document.querySelectorAll('svg')]
            .filter(e => !e.parentElement.closest('svg'));
        return els.map(e => {
            const r = e.getBoundingClientRect();
            return [e.tagName, e.closest('figure') ? e.closest('figure').className : '', r.width, r.height,
                    e.tagName === 'IMG' ? e.naturalWidth : -1];
        });
        """
    )
    # Per profile: one trend per metric plus the density matrix, logical and PLOB plots.
    n_metrics = sum(result.counts.values())
    assert len(sizes) == n_metrics + 3 * len(PROFILES)
    empty = [s for s in sizes if not (s[2] > 0 and s[3] > 0) or s[4] == 0]
    assert empty == []
    kinds = {s[1] for s in sizes}
    assert {"trend", "rho", "logical", "plob"} <= kinds

    # The verdict is text as well as colour.
    text = driver.execute_script("return document.body.innerText")
    assert "Release verdict: ✖ REGRESSION" in text

    distinct, ink = _distinct_colours(driver.get_screenshot_as_png())
    assert distinct > 50 and ink > 0.05, (distinct, ink)
    for cls in ("trend", "rho", "plob"):
        figure = driver.find_element("css selector", f"figure.{cls}")
        driver.execute_script("arguments[0].scrollIntoView()", figure)
        distinct, ink = _distinct_colours(figure.screenshot_as_png)
        assert distinct > 8 and ink > 0.02, (cls, distinct, ink)


def test_the_skip_reason_names_exactly_what_is_missing(tmp_path: Path) -> None:
    present = tmp_path / "present"
    present.write_text("")
    gone = str(tmp_path / "gone")
    assert missing_browser(str(present), str(present)) is None
    assert (
        missing_browser(str(present), gone)
        == f"chromedriver ({gone}) is not installed; apt-get install chromium-driver"
    )
    assert missing_browser(gone, str(present)) == f"Chromium ({gone}) is not installed; apt-get install chromium"
    assert missing_browser(gone, gone) == (
        f"Chromium ({gone}) and chromedriver ({gone}) are not installed; apt-get install chromium chromium-driver"
    )
