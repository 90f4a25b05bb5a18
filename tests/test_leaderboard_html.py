"""The HTML leaderboard: self-contained, loads without console errors in headless Chromium, sorts, plots.

Needs Debian's chromium + chromium-driver (``apt-get install -y chromium chromium-driver``) and
the ``selenium`` package; skipped with the reason when they are absent.
"""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from test_leaderboard_fixtures import make_submission, register
from unlearnbench.cli import main

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    register()
    root = tmp_path_factory.mktemp("html")
    paths = [make_submission(root / f"{lab}{s}", lab, s, shift, method={"name": lab.lower(), "config": {}})
             for lab, shifts in (("Alpha", (0.1, 0.2)), ("Beta", (0.7, 0.6)), ("Gamma", (-0.3, -0.35)))
             for s, shift in enumerate(shifts)]
    paths.append(make_submission(root / "t", "Target <b>&", 0, 1.0))
    lb, html = root / "lb.json", root / "board.html"
    assert main(["leaderboard", "build", *map(str, paths), "-o", str(lb), "--title", "HTML test"]) == 0
    assert main(["leaderboard", "render", str(lb), "--format", "html", "-o", str(html)]) == 0
    return html


def test_html_is_self_contained(page):
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', text)  # no CDN, no external asset
    assert "<script>" in text and "<style>" in text and "<svg" in text and 'id="leaderboard-data"' in text
    assert "Target &lt;b&gt;&amp;" in text and "Target <b>&" not in text  # labels are escaped
    assert text.count('class="pt front"') >= 1 and 'class="pareto"' in text
    assert "commit" in text and "seed 0" in text


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_html_in_headless_chromium(page, tmp_path):
    if not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()):
        pytest.skip("chromium/chromedriver not installed (apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1400"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(30)
        driver.get(page.resolve().as_uri())
        table = driver.find_element(By.CSS_SELECTOR, "table.lb")

        def labels():
            return [r.find_elements(By.TAG_NAME, "td")[1].text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

        assert labels()[0] == "Gamma" or labels()[0] == "Alpha"  # ranked by dummy_gap (lower is better)
        headers = table.find_elements(By.CSS_SELECTOR, "thead th")
        label_th = next(h for h in headers if h.text.strip().startswith("label"))
        label_th.click()
        assert labels() == sorted(labels(), key=str.lower) and label_th.get_attribute("aria-sort") == "ascending"
        label_th.click()
        assert labels() == sorted(labels(), key=str.lower, reverse=True)
        util_th = next(h for h in headers if h.text.strip().startswith("dummy_utility"))
        util_th.click()
        vals = [float(r.find_elements(By.TAG_NAME, "td")[headers.index(util_th)].get_attribute("data-value"))
                for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
        assert vals == sorted(vals)
        svg = driver.find_element(By.CSS_SELECTOR, "svg.plot")
        assert svg.size["width"] > 100 and len(svg.find_elements(By.CSS_SELECTOR, "circle")) == 4
        assert driver.execute_script("return JSON.parse(document.getElementById('leaderboard-data').textContent)"
                                     ".tasks.length") == 1
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        shot = tmp_path / "leaderboard.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    data = shot.read_bytes()
    w, h = _png_size(data)
    assert w >= 600 and h >= 400 and len(data) > 20_000  # a rendered page, not a blank image
    assert len(set(zlib.decompress(b"".join(_idat(data)))[:200_000])) > 8  # many distinct byte values: content


def _idat(data: bytes):
    i = 8
    while i < len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        kind = data[i + 4:i + 8]
        if kind == b"IDAT":
            yield data[i + 8:i + 8 + n]
        i += 12 + n
