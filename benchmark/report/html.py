"""One self-contained HTML page of a report: its tables (sortable), figures (PNG data URIs) and provenance.

The page is rendered from the very `Table` objects and PNG files the report writes beside it, so it
never disagrees with tables/ and figures/. Every text is escaped; the page loads nothing from elsewhere
(inline CSS and a few lines of plain JS) and carries no timestamp: the same runs give the same bytes.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path

import pandas as pd

from benchmark import __version__
from benchmark.engine import runstate
from benchmark.fsutil import file_digest
from benchmark.report.runs import RunIndex
from benchmark.report.tables import MISSING, Entry, Table

# Table-name suffix -> its section's anchor and heading, and what a table's title adds to 'Table N'.
SECTIONS = {
    "": ("results", "Results", ""),
    "tests": ("tests", "Statistical tests", ": significance tests"),
    "vs_paper": ("paper", "Paper vs ours", ": paper vs ours"),
}
_TITLES = {"timings": "Training time per epoch", "claims": "What holds at this scale: the paper's claims"}
PROVENANCE_COLUMNS = (
    "Dataset",
    "Model",
    "Encoder",
    "Tag",
    "Seed",
    "Profile",
    "Device",
    "tedbench",
    "Folder",
    "DONE.json sha256",
)
_NUMBER = re.compile(r"[+-]?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?%?")
PROVENANCE_ID = "provenance-runs"
LONG_TABLE = 30

_CSS = """
body { margin: 0; color: #1f2328; background: #fff; font: 14px/1.5 system-ui, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 36px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 44px 0 4px; padding-bottom: 4px; border-bottom: 2px solid #d0d7de; }
h3 { font-size: 15px; margin: 30px 0 8px; }
a { color: #0969da; text-decoration: none; }
a:hover { text-decoration: underline; }
.lead { color: #57606a; margin: 0 0 20px; }
nav { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 20px; }
nav > ol { columns: 3; margin: 0; padding-left: 18px; }
nav ol ol { padding-left: 16px; font-size: 13px; }
nav li { break-inside: avoid; }
.scroll { overflow-x: auto; max-width: 100%; width: max-content; border: 1px solid #d8dee4; }
.scroll.long { overflow-y: auto; max-height: 560px; }
table { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: #57606a; font-size: 12px; padding: 6px 8px; max-width: 1080px;
  position: sticky; left: 0; }
th, td { border: 1px solid #d8dee4; padding: 3px 8px; white-space: nowrap; text-align: left; }
th:first-child, td:first-child { border-left: 0; }
th:last-child, td:last-child { border-right: 0; }
tbody tr:last-child td { border-bottom: 0; }
td.num { text-align: right; }
td.missing { color: #8c959f; text-align: center; }
thead th { background: #eef1f4; cursor: pointer; user-select: none; position: sticky; top: 0; z-index: 2; }
tbody td:first-child { position: sticky; left: 0; z-index: 1; background: inherit; }
thead th:first-child { left: 0; z-index: 3; }
tbody tr { background: #fff; }
sup { line-height: 0; }
thead th:hover, thead th:focus { background: #dde3ea; outline: none; }
thead th::after { content: " \\2195"; color: #afb8c1; }
thead th[aria-sort="ascending"]::after { content: " \\25B2"; color: #0969da; }
thead th[aria-sort="descending"]::after { content: " \\25BC"; color: #0969da; }
tbody tr:nth-child(even) { background: #f8fafb; }
tbody tr:hover { background: #fff8c5; }
figure { margin: 18px 0; }
figure img { display: block; max-width: 100%; border: 1px solid #d8dee4; }
figcaption { color: #57606a; font-size: 12px; margin-top: 4px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 8px 0 16px; }
dt { font-weight: 600; }
dd { margin: 0; }
"""

# Click (or Enter on) a header: ascending, then descending; '–' and empty cells stay last, numbers before text.
_JS = """
function sortKey(cell) {
  if (cell.classList.contains("missing") || cell.textContent.trim() === "") return null;
  return "value" in cell.dataset ? Number(cell.dataset.value) : cell.textContent.trim();
}
function compareCells(a, b, direction) {
  const x = sortKey(a), y = sortKey(b);
  if (x === null || y === null) return (x === null) - (y === null);
  if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
  return direction * (typeof x === "number" ? x - y : x.localeCompare(y, undefined, {numeric: true}));
}
document.querySelectorAll("table.sortable").forEach((table) => {
  const headers = Array.from(table.tHead.rows[0].cells);
  const body = table.tBodies[0];
  headers.forEach((th, column) => {
    th.tabIndex = 0;
    th.setAttribute("aria-sort", "none");
    const sort = () => {
      const direction = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      headers.forEach((other) => other.setAttribute("aria-sort", "none"));
      th.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
      const rows = Array.from(body.rows);
      rows.sort((a, b) => compareCells(a.cells[column], b.cells[column], direction));
      body.append(...rows);
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
    });
  });
});
"""


def render_report(
    tables: Sequence[Table],
    figures: Sequence[Path],
    index: RunIndex,
    *,
    runs_root: Path,
    encoder: str | None,
    tag: str | None,
) -> str:
    """The page: table of contents, each section's tables, the figures (`figures`: PNG files), provenance."""
    sections: dict[str, list[Table]] = {suffix: [] for suffix in SECTIONS}
    for table in tables:
        sections[section_of(table.name)].append(table)
    toc = [
        _toc_entry(anchor, heading, [(t.name, table_title(t.name)) for t in sections[suffix]])
        for suffix, (anchor, heading, _) in SECTIONS.items()
    ]
    toc += [
        _toc_entry("figures", "Figures", [(path.stem, figure_title(path.stem)) for path in figures]),
        _toc_entry("provenance", "Provenance", []),
    ]
    body = [
        "<h1>tedbench report</h1>",
        f'<p class="lead">Runs in <code>{escape(str(runs_root))}</code>; click a column header to sort a table.</p>',
        f"<nav><ol>{''.join(toc)}</ol></nav>",
    ]
    for suffix, (anchor, heading, _) in SECTIONS.items():
        body.append(f'<h2 id="{anchor}">{escape(heading)}</h2>')
        body += [render_table(table, table_title(table.name)) for table in sections[suffix]]
    body.append('<h2 id="figures">Figures</h2>')
    body += [render_figure(path) for path in figures]
    body.append(render_provenance(index, runs_root=runs_root, encoder=encoder, tag=tag))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>tedbench report: {escape(str(runs_root))}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{chr(10).join(body)}\n</main>\n<script>{_JS}</script>\n</body>\n</html>\n"
    )


def section_of(name: str) -> str:
    """The key in SECTIONS: 'table3_tests' -> 'tests', 'table3_vs_paper' -> 'vs_paper', others -> ''."""
    suffix = name.partition("_")[2]
    return suffix if suffix in SECTIONS else ""


def table_title(name: str) -> str:
    """'table3' -> 'Table 3', 'table3_tests' -> 'Table 3: significance tests', 'timings' -> its title."""
    if name in _TITLES:
        return _TITLES[name]
    return f"Table {name.partition('_')[0].removeprefix('table')}{SECTIONS[section_of(name)][2]}"


def render_table(table: Table, title: str) -> str:
    """A sortable <table> with id = the table's name and its caption, under a heading `title`.

    A table of more than LONG_TABLE rows scrolls in a box of its own, its header row staying in view.
    """
    table_id = escape(table.name)
    box = "scroll long" if len(table.frame) > LONG_TABLE else "scroll"
    head = "".join(f'<th scope="col">{escape(str(column))}</th>' for column in table.frame.columns)
    rows = "".join(
        f"<tr>{''.join(_cell(value) for value in row)}</tr>\n" for row in table.frame.itertuples(index=False)
    )
    return (
        f'<h3><a href="#{table_id}">{escape(title)}</a></h3>\n'
        f'<div class="{box}"><table class="sortable" id="{table_id}">'
        f"<caption>{escape(table.caption)}</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody></table></div>"
    )


def figure_title(stem: str) -> str:
    """'fig5_user_groups' -> 'Fig. 5: user groups'."""
    number, _, topic = stem.partition("_")
    return f"Fig. {number.removeprefix('fig')}: {topic.replace('_', ' ')}"


def render_figure(png: Path) -> str:
    """<figure> with the PNG as a base64 data URI and a link to the SVG beside it in the report folder."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    svg = f"{png.parent.name}/{png.stem}.svg"
    figure_id, title = escape(png.stem), escape(figure_title(png.stem))
    return (
        f'<h3><a href="#{figure_id}">{title}</a></h3>\n'
        f'<figure id="{figure_id}"><img src="data:image/png;base64,{data}" alt="{title}">'
        f'<figcaption>{escape(png.name)}; vector version: <a href="{escape(svg)}">{escape(svg)}</a> '
        "(beside this page)</figcaption></figure>"
    )


def render_provenance(index: RunIndex, *, runs_root: Path, encoder: str | None, tag: str | None) -> str:
    """What the report was built from: the selection and every run it read, with the digest of its DONE.json."""
    runs = [run for cell in index.cells.values() for run in cell.runs]
    facts = {
        "Runs folder": str(runs_root),
        "Runs read": f"{len(runs):,} in {len(index.cells):,} cells",
        "Tag": tag or "none (untagged runs)",
        "Text encoder (Tables 3-4, figures)": encoder or MISSING,
        "Built by": f"tedbench {__version__}",
    }
    rows = [
        [
            *(value or MISSING for value in run.key),
            str(run.seed),
            run.config.get("profile") or MISSING,
            str(run.config.get("device") or MISSING),
            str((run.config.get("environment") or {}).get("tedbench") or MISSING),
            str(run.path.relative_to(runs_root)),
            file_digest(run.path / runstate.DONE)[:16],
        ]
        for run in runs
    ]
    caption = (
        "Every run the report read (finished runs only: DONE.json seals config.json, metrics.json, the rank files "
        "and users.tsv; its digest identifies the exact files). Folders are relative to the runs folder."
    )
    listing = Table(PROVENANCE_ID, pd.DataFrame(rows, columns=PROVENANCE_COLUMNS), pd.DataFrame(), caption)
    details = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts.items())
    return f'<h2 id="provenance">Provenance</h2>\n<dl>{details}</dl>\n{render_table(listing, "Run folders")}'


def _cell(value: object) -> str:
    if isinstance(value, Entry):
        return f'<td class="num" data-value="{value.mean!r}">{value.render("html")}</td>'
    text = str(value)
    if text in (MISSING, ""):
        return f'<td class="missing">{escape(text)}</td>'
    if _NUMBER.fullmatch(text):
        return f'<td class="num" data-value="{float(text.replace(",", "").rstrip("%"))!r}">{escape(text)}</td>'
    return f"<td>{escape(text)}</td>"


def _toc_entry(anchor: str, title: str, children: list[tuple[str, str]]) -> str:
    items = "".join(f'<li><a href="#{escape(a)}">{escape(t)}</a></li>' for a, t in children)
    return f'<li><a href="#{escape(anchor)}">{escape(title)}</a>' + (f"<ol>{items}</ol>" if items else "") + "</li>"
