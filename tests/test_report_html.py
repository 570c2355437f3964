"""`tedbench report --html` opened in headless Chromium: every Markdown table with its caption and cells, the
figures as PNG data URIs, provenance, escaping, sortable headers, a non-blank screenshot; and a report without
--html withdraws an earlier page, also when it completes a killed publication.

Chromium is /usr/bin/chromium (Debian's `chromium` package); clicks go through Playwright driving that binary.
Without them these tests skip, unless TEDBENCH_REQUIRE_BROWSER=1 (CI), which makes their absence a failure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmark.cli import main
from benchmark.report import publish
from benchmark.report.build import build_report
from benchmark.report.html import PROVENANCE_ID
from tests.faultkit import orphans
from tests.test_report import USERS, make_run, make_workspace, md_rows

ODD_MODEL = 'Odd<i>&"model'  # must reach the page as text, never as markup
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
MARKDOWN_MARKUP = re.compile(r"\*\*|</?u>")


def need(what: str, found: Any) -> Any:
    """`found`, or skip (fail under TEDBENCH_REQUIRE_BROWSER=1) when it is missing."""
    if not found:
        if os.environ.get("TEDBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{what} is required (TEDBENCH_REQUIRE_BROWSER=1) but missing")
        pytest.skip(f"no {what}")
    return found


def chromium() -> str:
    return need("chromium (apt-get install chromium)", shutil.which("chromium"))


def headless(*args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with a fresh profile; stdout is what it prints (the DOM for --dump-dom)."""
    with tempfile.TemporaryDirectory() as profile:
        command = [chromium(), "--headless", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


class Page(HTMLParser):
    """A DOM's tables (id -> caption, header cells, body rows as cell texts), images, tags and header sort states."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict[str, Any]] = {}
        self.images: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.sort_states: list[str | None] = []
        self._table: dict[str, Any] | None = None
        self._text: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append(tag)
        if tag == "table":
            assert attributes.get("id") and attributes["id"] not in self.tables, f"table id {attributes.get('id')}"
            self._table = self.tables[attributes["id"]] = {"caption": "", "head": [], "rows": []}
        elif tag == "tr" and self._table is not None and self._table["head"]:
            self._table["rows"].append([])
        elif tag in ("caption", "th", "td"):
            self._text = []
            if tag == "th":
                self.sort_states.append(attributes.get("aria-sort"))
        elif tag == "img":
            self.images.append(attributes)

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("caption", "th", "td") and self._table is not None:
            text = "".join(self._text or []).strip()
            if tag == "caption":
                self._table["caption"] = text
            else:
                (self._table["head"] if tag == "th" else self._table["rows"][-1]).append(text)
            self._text = None


def markdown_table(path: Path) -> tuple[list[str], list[list[str]], str]:
    """Header, body cells as a reader sees them (bold/underline markup dropped, '\\*' -> '*') and caption."""
    table, _, caption = path.read_text().partition("\n\n")
    header = [cell.strip() for cell in table.splitlines()[0].strip().strip("|").split("|")]
    rows = [[MARKDOWN_MARKUP.sub("", cell).replace(r"\*", "*") for cell in row] for row in md_rows(path)]
    return header, rows, caption.strip()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The synthetic workspace plus a model whose name is HTML, and its report built by `tedbench report --html`."""
    runs = make_workspace(tmp_path_factory.mktemp("workspace"))
    rng = np.random.default_rng(7)
    make_run(runs, "OR", ODD_MODEL, 1, rng.integers(1, 40, USERS["OR"]), history=rng.integers(3, 118, USERS["OR"]))
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "--runs", str(runs), "--out", str(out), "--html"]) == 0
    return runs, out


@pytest.fixture(scope="module")
def dom(report: tuple[Path, Path]) -> Page:
    """The page's DOM after its scripts ran, as Chromium dumps it."""
    return Page(headless("--dump-dom", (report[1] / "report.html").as_uri()).stdout)


def test_every_markdown_table_is_on_the_page_with_its_caption_and_cells(report, dom):
    runs, out = report
    markdown = sorted((out / "tables").glob("*.md"))
    assert len(markdown) >= 9
    assert set(dom.tables) == {path.stem for path in markdown} | {PROVENANCE_ID}
    for path in markdown:
        header, rows, caption = markdown_table(path)
        table = dom.tables[path.stem]
        assert table["caption"] == caption, path.name
        assert table["head"] == header, path.name
        assert table["rows"] == rows, path.name
    assert ODD_MODEL in dom.tables["table3"]["head"] and "i" not in dom.tags
    assert dom.tags.count("script") == 1


def test_provenance_lists_every_run_folder(report, dom):
    runs, _ = report
    folders = sorted(str(path.parent.relative_to(runs)) for path in runs.rglob("config.json"))
    table = dom.tables[PROVENANCE_ID]
    folder = table["head"].index("Folder")
    assert sorted(row[folder] for row in table["rows"]) == folders


def test_figures_are_embedded_pngs_equal_to_the_written_ones(report, dom):
    _, out = report
    pngs = {path.stem: path.read_bytes() for path in (out / "figures").glob("*.png")}
    assert len(pngs) == 3 and len(dom.images) == 3
    prefix = "data:image/png;base64,"
    for image in dom.images:
        assert image["src"].startswith(prefix)
        data = base64.b64decode(image["src"].removeprefix(prefix), validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert data in pngs.values()
    assert sorted(data for data in pngs.values()) == sorted(
        base64.b64decode(image["src"].removeprefix(prefix)) for image in dom.images
    )


def test_scripts_ran_and_made_every_header_sortable(report, dom):
    source = Page((report[1] / "report.html").read_text())
    assert source.sort_states and set(source.sort_states) == {None}
    assert len(dom.sort_states) == len(source.sort_states) and set(dom.sort_states) == {"none"}


def test_screenshot_is_not_blank(report, tmp_path):
    shot = tmp_path / "page.png"
    headless(
        "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,2000", (report[1] / "report.html").as_uri()
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (2000, 1280, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert (pixels.min(axis=2) < 128).mean() > 0.01  # dark text and rules cover part of the page
    assert pixels.std() > 10


def test_clicking_a_header_sorts_its_rows_with_missing_cells_last(report):
    binary = chromium()
    sync_api = need("playwright (pip install playwright)", _import_playwright())

    def first_number(text: str) -> float | None:
        match = re.match(r"[+-]?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?", text)
        return float(match.group().replace(",", "")) if match else None

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=list(CHROMIUM_FLAGS))
        page = browser.new_page()
        page.goto((report[1] / "report.html").as_uri())
        headers = page.locator("#table3 thead th")
        names = headers.all_text_contents()

        def rows() -> list[list[str]]:
            script = "rows => rows.map(row => Array.from(row.cells, cell => cell.textContent))"
            return page.eval_on_selector_all("#table3 tbody tr", script)

        before = rows()
        for name in ("SASRec", "Impr."):
            column = names.index(name)
            for clicks, state in ((1, "ascending"), (2, "descending")):
                headers.nth(column).click()
                after = rows()
                values = [first_number(row[column]) for row in after]
                present = [v for v in values if v is not None]
                assert len(present) >= 4 and len(present) < len(values), name
                assert present == sorted(present, reverse=state == "descending"), (name, state)
                assert values[len(present) :] == [None] * (len(values) - len(present)), "missing cells last"
                assert sorted(after) == sorted(before)
                assert headers.nth(column).get_attribute("aria-sort") == state
        headers.nth(0).focus()
        page.keyboard.press("Enter")
        assert headers.nth(0).get_attribute("aria-sort") == "ascending"
        assert headers.nth(names.index("Impr.")).get_attribute("aria-sort") == "none"
        browser.close()


def _import_playwright() -> Any:
    try:
        from playwright import sync_api
    except ImportError:
        return None
    return sync_api


# -- withdrawal -----------------------------------------------------------------------------------


def test_a_report_without_html_withdraws_the_earlier_page(report, tmp_path):
    runs, out = report
    copy = shutil.copytree(out, tmp_path / "out")
    build_report(runs, copy)
    assert not (copy / "report.html").exists() and orphans(copy) == []
    assert (copy / "tables" / "table3.md").read_bytes() == (out / "tables" / "table3.md").read_bytes()


@pytest.mark.parametrize(
    ("outputs", "kept"),
    [
        (["tables", "figures", "metrics.json"], False),  # an attempt without --html: the old page goes
        (["tables", "figures", "metrics.json", "report.html"], True),  # its page already swapped in: it stays
        (None, True),  # a journal written before pages existed: nothing is withdrawn
    ],
)
def test_completing_a_killed_publication_withdraws_only_what_the_attempt_did_not_write(tmp_path, outputs, kept):
    out = tmp_path / "out"
    for name in ("tables", "figures"):
        (out / name).mkdir(parents=True)
    (out / "report.html").write_text("published page")
    (out / "metrics.json").write_text("old metrics")
    journal = out / publish.JOURNAL
    (journal / "new").mkdir(parents=True)
    (journal / "new" / "metrics.json").write_text("new metrics")
    owner = {"pid": os.getpid(), "host": socket.gethostname()} | ({"outputs": outputs} if outputs else {})
    (journal / "owner.json").write_text(json.dumps(owner))
    publish.recover(out)
    assert (out / "metrics.json").read_text() == "new metrics" and not journal.exists()
    assert (out / "report.html").exists() == kept
    assert orphans(out) == []
