"""The HTML leaderboard: self-contained, every number one click from its samples, readable from 800 to 1920 px.

The browser test needs Debian's chromium + chromium-driver (``apt-get install -y chromium
chromium-driver``) and ``selenium``; it is skipped with the reason when they are absent. It saves
full-page screenshots at 800, 1400 and 1920 px to ``$UNLEARNBENCH_SCREENSHOTS`` (default: a
``screenshots`` folder in pytest's temporary directory; the path is printed).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from test_leaderboard_fixtures import WIDE_TASK, make_submission, register
from unlearnbench.cli import main
from unlearnbench.results import atomic_write_json, read_json, sha256_file

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTHS = (800, 1400, 1920)
# label, shift per seed: close points on purpose (labels must still not overprint)
RANKED = {"GA": (0.9, 0.95, 0.85), "GradDiff": (0.5, 0.55, 0.45), "NPO": (0.3, 0.32, 0.28),
          "SimNPO": (0.31, 0.33, 0.27), "RMU": (0.12, 0.1, 0.14), "A long method label (v2)": (0.6, 0.58, 0.62),
          "One seed": (0.2,)}


def _png(width: int, height: int) -> bytes:
    """A small valid grey PNG (stands in for a diffusion contact sheet)."""
    raw = b"".join(b"\x00" + bytes([180, 180, 180]) * width for _ in range(height))
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _attach_sheet(result: Path) -> None:
    sheet = result.parent / "contact_sheet.png"
    sheet.write_bytes(_png(40, 30))
    doc = read_json(result)
    doc["attachments"] = [{"role": "contact_sheet", "path": sheet.name, "sha256": sha256_file(sheet)}]
    atomic_write_json(result, doc)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    """Results under runs/, the board and the page in site/ (links must cross folders)."""
    register()
    root = tmp_path_factory.mktemp("html")
    runs = root / "runs"
    paths = []
    for task in ("test-dummy/leaderboard", WIDE_TASK):
        tag = task.split("/")[1]
        for label, shifts in RANKED.items():
            for seed, shift in enumerate(shifts):
                paths.append(make_submission(runs / tag / f"{label[:8]}-{seed}", label, seed, shift, task=task,
                                             method={"name": label.split()[0].lower(), "config": {"lr": 0.1}}))
        paths.append(make_submission(runs / tag / "target", "Target <b>&", 0, 1.0, task=task, checkpoint="world:target"))
        paths.append(make_submission(runs / tag / "retain", "Retain", 0, 0.0, task=task, checkpoint="world:retain"))
    _attach_sheet(paths[0])
    site = root / "site"
    board, page = site / "lb.json", site / "page" / "board.html"
    assert main(["leaderboard", "build", *map(str, paths), "-o", str(board), "--title", "HTML test"]) == 0
    assert main(["leaderboard", "render", str(board), "--format", "html", "-o", str(page)]) == 0
    return {"page": page, "board": read_json(board), "paths": paths}


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids, self.srcs = [], set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "img" and a.get("src"):
            self.srcs.append(a["src"])


def test_page_is_self_contained_and_escaped(site):
    text = site["page"].read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', text)  # no CDN, no external asset
    assert "<script>" in text and "<style>" in text and "<svg" in text and 'id="leaderboard-data"' in text
    assert "Target &lt;b&gt;&amp;" in text and "Target <b>&" not in text  # labels are escaped
    assert oct(site["page"].stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # servable (not 0600)


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_every_link_resolves_and_every_number_links_to_its_samples(site):
    page = site["page"]
    parser = _Links()
    parser.feed(page.read_text())
    local = [h for h in parser.hrefs if not h.startswith("#")]
    for h in local + parser.srcs:
        assert (page.parent / unquote(h)).resolve().is_file(), h
    for h in parser.hrefs:
        if h.startswith("#"):
            assert h[1:] in parser.ids, h  # metric cards and model cards exist
    board = site["board"]
    for t in board["tasks"]:
        for e in t["entries"]:
            for r in e["results"]:
                files = r["files"]
                for rel in [files["result"], files["samples"]] + [x["path"] for x in files["references"]]:
                    target = (page.parent / "../" / rel).resolve()
                    assert target.is_file() and any((page.parent / unquote(h)).resolve() == target for h in local)
    # one click from a shown number to its samples: every per-seed value is a link to a .samples.jsonl
    values = re.findall(r'<a class="seed" href="([^"]+)"', page.read_text())
    n_values = sum(len(e["seeds"]) * len([m for m in t["metrics"] if m["headline"]])
                   for t in board["tasks"] for e in t["entries"])
    assert len(values) == n_values and all(v.endswith(".samples.jsonl") for v in values)
    assert any(s.endswith("contact_sheet.png") for s in parser.srcs)  # the contact sheet in the model card


def _driver(tmp_path):
    if not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()):
        pytest.skip("chromium/chromedriver not installed (apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
                 "--window-size=1400,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


LAYOUT_JS = """
const out = {page: [document.documentElement.scrollWidth, window.innerWidth], tables: [], cells: [], labels: []};
document.querySelectorAll('table').forEach(t => out.tables.push([t.scrollWidth, t.parentElement.clientWidth]));
document.querySelectorAll('table.lb td, table.lb th').forEach(c => {
  if (c.scrollWidth > c.clientWidth + 1) out.cells.push(c.textContent.slice(0, 40) + ' ' + c.scrollWidth + '>' + c.clientWidth);
});
document.querySelectorAll('svg.plot').forEach(svg => {
  const s = svg.getBoundingClientRect();
  const boxes = Array.from(svg.querySelectorAll('text.lbl')).map(e => { const r = e.getBoundingClientRect();
      return [r.left, r.top, r.right, r.bottom, e.textContent]; });
  const dots = Array.from(svg.querySelectorAll('.pt')).map(e => { const r = e.getBoundingClientRect();
      return [r.left, r.top, r.right, r.bottom]; });
  out.labels.push({svg: [s.left, s.top, s.right, s.bottom], boxes: boxes, dots: dots});
});
return out;
"""


def _disjoint(a, b) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def _shot_dir(tmp_path_factory) -> Path:
    d = Path(os.environ.get("UNLEARNBENCH_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_layout_at_three_widths_in_chromium(site, tmp_path, tmp_path_factory):
    driver = _driver(tmp_path)
    shots = _shot_dir(tmp_path_factory)
    try:
        driver.set_page_load_timeout(30)
        for width in WIDTHS:
            driver.set_window_size(width, 1000)
            driver.get(site["page"].resolve().as_uri())
            inner = driver.execute_script("return window.innerWidth")
            driver.set_window_size(width + (width - inner), 1000)  # the viewport, not the window, is `width` wide
            driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
            lay = driver.execute_script(LAYOUT_JS)  # with every model card open
            driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = false)")
            assert lay["page"][1] == width
            assert lay["page"][0] <= lay["page"][1], f"horizontal overflow at {width}px: {lay['page']}"
            assert all(sw <= cw + 1 for sw, cw in lay["tables"]), (width, lay["tables"])
            assert lay["cells"] == [], (width, lay["cells"][:5])
            for plot in lay["labels"]:
                boxes, svg = plot["boxes"], plot["svg"]
                assert boxes, "every plot labels its points"
                for i, a in enumerate(boxes):
                    assert svg[0] <= a[0] and a[2] <= svg[2] and svg[1] <= a[1] and a[3] <= svg[3], (width, a)
                    for b in boxes[i + 1:]:
                        assert _disjoint(a, b), f"labels overprint at {width}px: {a[4]!r} / {b[4]!r}"
                    for d in plot["dots"]:
                        assert _disjoint(a, d), f"label {a[4]!r} covers a point at {width}px"
            shot = shots / f"leaderboard-{width}px.png"
            data = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            shot.write_bytes(base64.b64decode(data["data"]))
            assert _png_size(shot.read_bytes())[0] == width
        print(f"screenshots: {shots}")
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
    finally:
        driver.quit()


def test_sorting_links_and_cards_in_chromium(site, tmp_path):
    from selenium.webdriver.common.by import By

    driver = _driver(tmp_path)
    try:
        driver.get(site["page"].resolve().as_uri())
        table = driver.find_element(By.CSS_SELECTOR, "#task-0 table.lb")

        def column(i):
            return [r.find_elements(By.TAG_NAME, "td")[i] for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

        def labels():
            return [c.find_element(By.CSS_SELECTOR, "[data-value]").get_attribute("data-value") for c in column(1)]

        section = site["board"]["tasks"][0]
        assert labels() == [e["label"].lower() for e in section["entries"]]  # target, reference rows, then by rank
        ranks = [c.text for c in column(0)]
        assert ranks[:2] == ["ref", "ref"] and ranks[2] == "1"
        headers = table.find_elements(By.CSS_SELECTOR, "thead th")
        headers[1].click()
        assert labels() == sorted(labels()) and headers[1].get_attribute("aria-sort") == "ascending"
        headers[1].click()
        assert labels() == sorted(labels(), reverse=True)
        gap = next(i for i, h in enumerate(headers) if h.text.startswith("dummy_forget"))
        headers[gap].click()  # a gap column sorts by the gap
        keys = [float(c.find_element(By.CSS_SELECTOR, "span.m").get_attribute("data-value")) for c in column(gap)]
        assert keys == sorted(keys)
        # the metric header's link opens the metric card; the label opens the model card
        headers[gap].find_element(By.TAG_NAME, "a").click()
        assert driver.execute_script("return location.hash") == "#metric-dummy_forget"
        link = column(1)[0].find_element(By.TAG_NAME, "a")
        card_id = link.get_attribute("href").split("#")[1]
        link.click()
        assert driver.find_element(By.ID, card_id).get_attribute("open") == "true"
        # every per-seed value links to an existing per-sample file
        for a in table.find_elements(By.CSS_SELECTOR, "a.seed"):
            assert Path(unquote(urlparse(a.get_attribute("href")).path)).is_file()
        data = driver.execute_script("return JSON.parse(document.getElementById('leaderboard-data').textContent)")
        assert len(data["tasks"]) == 2
    finally:
        driver.quit()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_table_command_renders_html_and_judged_cells(tmp_path):
    """`unlearnbench table --format html` writes a page with the same table machinery; paper tables
    show gaps for Δ metrics and never bold a reference row."""
    from test_table_spec import _md_rows, _spec_file

    import test_leaderboard_fixtures as fx
    import unlearnbench.runner

    fx.register()
    old = unlearnbench.runner.load_model
    unlearnbench.runner.load_model = fx.fake_load_model
    try:
        spec, out = _spec_file(tmp_path, seeds=[0], metrics=["dummy_forget", "dummy_utility"]), tmp_path / "out"
        assert main(["table", str(spec), "-o", str(out), "--format", "html", "--quiet"]) == 0
        assert main(["table", str(spec), "-o", str(out), "--format", "md", "--no-run", "--quiet"]) == 0
    finally:
        unlearnbench.runner.load_model = old
    text = (out / "table.html").read_text()
    parser = _Links()
    parser.feed(text)
    assert any(h.endswith(".samples.jsonl") for h in parser.hrefs)
    assert all((out / unquote(h)).is_file() for h in parser.hrefs if not h.startswith("#"))
    assert 'class="badge">target<' in text and 'class="badge">reference<' in text
    rows = _md_rows((out / "table.md").read_text())
    assert rows[0] == ["method", "dummy_forget Δ↓", "dummy_utility ↑"]
    util = {r[0]: r[2] for r in rows[1:]}
    assert float(util["Retain"]) > max(float(v.strip("*")) for k, v in util.items() if k != "Retain")
    assert [k for k, v in util.items() if v.startswith("**")] == ["Shift big"]  # best ranked row, not Retain
