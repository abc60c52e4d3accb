"""``pxelab report``: boots as self-contained HTML pages.

One boot (a directory with ``evidence.json`` or ``timeline.json``) becomes one
page: verdict, cause and the command to reproduce it; a stage chart; the
merged timeline, filterable by source; the causes with their evidence; the
last console lines; links to the artifacts. A tree of boots (a matrix run)
becomes an overview page — a scenario x stage chart and a table of cases, and
when the boots span more than one firmware set a case x set table with each
set's key package versions — with each boot's own page written next to its
evidence (``report.html``).

Pages carry their CSS inline and need no script, font or image from
anywhere: the timeline filter is plain CSS on checkboxes. Links are relative,
so a copied or archived tree keeps working.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from pxelab.analysis.evidence import Source
from pxelab.analysis.report.boots import REPORT_FILE, BootRecord, find_boots, load_boot
from pxelab.analysis.report.charts import esc, legend, matrix_chart, stage_chart
from pxelab.analysis.report.sets import SetGrid, set_grid
from pxelab.analysis.report.text import cited_lines
from pxelab.core.errors import ConfigError
from pxelab.machine.terminal import as_displayed

CSS = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1100px; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em;
  border-bottom: 1px solid #ccc; }
.verdict { padding: 0.1em 0.5em; border-radius: 0.3em; color: #fff; font-size: 0.8em; }
.ok { background: #2ca02c; } .failed { background: #d62728; }
table { border-collapse: collapse; } th, td { text-align: left; vertical-align: top;
  padding: 0.15em 0.6em; }
table.facts th { color: #555; font-weight: normal; white-space: nowrap; }
table.grid { width: 100%; } table.grid th { background: #eee; }
table.grid tr:nth-child(even) td { background: #f7f7f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre, code, td.text { font-family: monospace; font-size: 0.9em; }
td.text { white-space: pre-wrap; word-break: break-all; }
pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; white-space: pre-wrap;
      word-break: break-all; }
tr.failed td { background: #fdd !important; font-weight: bold; }
tr.cited td { background: #fff3c4 !important; }
.cause { border-left: 4px solid #d62728; padding-left: 0.8em; margin: 1em 0; }
.fix { color: #185; } .note { color: #666; font-size: 0.9em; }
.filters label { margin-right: 1.2em; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em;
          vertical-align: middle; }
table.sets td.versions { font-size: 0.85em; color: #555; }
table.sets td.none { color: #999; } tr.mixed td:first-child { background: #fff3c4 !important; }
svg { max-width: 100%; height: auto; } svg text.tick { fill: #777; font-size: 10px; }
"""
# One checkbox per source hides that source's rows of the timeline table when cleared.
FILTER_CSS = "".join(f"#show-{s}:not(:checked) ~ table tr.src-{s} {{ display: none; }}\n"
                     for s in Source)


def write_report(root: Path, output: Path | None = None) -> Path:
    """Render the boot in ``root``, or every boot under it; returns the page written."""
    boots = find_boots(root)
    if not boots:
        raise ConfigError(f"no boot found under {root}: no evidence.json or timeline.json; "
                          "give a directory that `pxelab boot --artifacts` or pytest "
                          "--pxelab-artifacts (with --pxelab-keep-artifacts) wrote")
    out = output if output is not None else root / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    if len(boots) == 1:  # one boot, maybe in a `pxelab boot --artifacts` directory
        _write(out, boot_page(load_boot(boots[0]), out.parent))
        return out
    records: list[BootRecord] = []
    unreadable: list[str] = []
    for directory in boots:
        try:
            records.append(load_boot(directory))
        except ConfigError as error:
            unreadable.append(str(error))
    pages = {}
    for record in records:
        page = record.directory / REPORT_FILE
        _write(page, boot_page(record, page.parent, index=out))
        pages[record.directory] = page
    _write(out, matrix_page(records, out.parent, pages, unreadable))
    return out


def _write(path: Path, text: str) -> None:
    # errors="replace": console text may hold lone surrogates from undecodable bytes.
    path.write_text(text, encoding="utf-8", errors="replace")


def link(target: Path, page_dir: Path) -> str:
    """``target`` relative to the page's directory, as a URL path (unescaped)."""
    return quote(Path(os.path.relpath(target, page_dir)).as_posix())


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title>"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<style>{CSS}{FILTER_CSS}</style></head>\n<body>\n{body}\n"
            "<p class=\"note\">written by <code>pxelab report</code></p>\n</body></html>\n")


# -- one boot -------------------------------------------------------------------------


def boot_page(record: BootRecord, page_dir: Path, index: Path | None = None) -> str:
    """The page of one boot; ``index`` is the overview page it links back to."""
    back = (f'<p><a href="{esc(link(index, page_dir))}">\u2190 all boots</a></p>'
            if index is not None else "")
    sections = [back, _header(record), _section("stages", "Stages", _stages(record))]
    if not record.ok:
        sections.append(_section("causes", "Causes", _causes(record)))
    sections += [_section("timeline", "Timeline", _timeline(record)),
                 _section("console", "Last console lines",
                          f"<pre>{esc(as_displayed(record.timeline.console_tail))}</pre>"),
                 _section("artifacts", "Artifacts", _artifacts(record, page_dir))]
    verdict = "booted" if record.ok else "FAILED"
    return _page(f"{record.label}: {verdict}", "\n".join(s for s in sections if s))


def _section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def _header(record: BootRecord) -> str:
    timeline = record.timeline
    verdict = ('<span class="verdict ok">booted</span>' if record.ok
               else '<span class="verdict failed">FAILED</span>')
    if record.ok:
        result = f"reached userspace in {record.seconds:.2f}s"
    else:
        result = (f"failed at stage {timeline.failed_stage or 'userspace'!r} after "
                  f"{record.seconds:.2f}s: {timeline.failure or 'the userspace marker is wrong'}")
    rows = [("result", esc(result))]
    if not record.ok:
        rows.append(("cause", _cause_line(record)))
    if not record.ok and record.diagnosis is not None and record.diagnosis.evidence_line():
        rows.append(("evidence", esc(record.diagnosis.evidence_line().partition(": ")[2])))
    if record.evidence.facts.faults:
        rows.append(("faults", esc(", ".join(record.evidence.facts.faults))))
    rows += [("reproduce", f"<code>{esc(record.reproduce)}</code>"),
             ("directory", f"<code>{esc(record.directory)}</code>")]
    facts = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return (f"<header><h1>{esc(record.label)} {verdict}</h1>"
            f'<table class="facts">{facts}</table>'
            f"<details><summary>versions and lab</summary>{_versions(record)}</details>"
            "</header>")


def _cause_line(record: BootRecord) -> str:
    if record.diagnosis is None:
        return "not diagnosed (this boot has no diagnosis.json)"
    cause = record.cause
    if cause is None:
        return f"unknown: {esc(record.diagnosis.unknown())}"
    return f"{esc(cause.summary)} <code>[{esc(cause.code)}]</code>"


def _versions(record: BootRecord) -> str:
    props = dict(record.timeline.properties)
    packages = props.pop("packages", {})
    rows = [(k, v) for k, v in props.items() if not isinstance(v, dict)]
    facts = record.evidence.facts
    rows += [("link MTU", facts.link_mtu), ("NIC driver", facts.nic_driver),
             ("data root", facts.data_root)]
    if isinstance(packages, dict):
        rows += [(f"package {name}", version) for name, version in sorted(packages.items())]
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                   for k, v in rows if v not in ("", None))
    return f'<table class="facts">{body}</table>'


def _stages(record: BootRecord) -> str:
    return (stage_chart(record) + '<p class="note">Each bar runs from the previous milestone '
            "(or power-on) to the one named; hover a bar for its times.</p>")


def _causes(record: BootRecord) -> str:
    diagnosis = record.diagnosis
    if diagnosis is None:
        return ('<p>Not diagnosed: this boot has no diagnosis.json (it ran before pxelab '
                "diagnosed boots). The timeline and console below show what happened.</p>")
    if not diagnosis.causes:
        return ("<p>No diagnosis rule matched. The events and packets right before the "
                "failure, in the timeline below, are the place to start.</p>")
    blocks = []
    for cause in diagnosis.causes:
        evidence = "\n".join(cause.evidence)
        blocks.append(
            f'<div class="cause"><p><strong>{esc(cause.summary)}</strong> '
            f"<code>[{esc(cause.code)}]</code> at stage {esc(cause.stage)}</p>"
            + (f"<pre>{esc(evidence)}</pre>" if evidence else "")
            + (f'<p class="fix">fix: {esc(cause.fix)}</p>' if cause.fix else "")
            + "</div>")
    return "\n".join(blocks)


def _timeline(record: BootRecord) -> str:
    entries = record.evidence.entries()
    cited = cited_lines(record.diagnosis)
    counts = {s: sum(1 for e in entries if e.source == s) for s in Source}
    # Firmware debug output runs to thousands of lines: shown on request.
    filters = "".join(
        f'<input type="checkbox" id="show-{s}"{"" if s is Source.FIRMWARE else " checked"}>'
        f'<label for="show-{s}">{esc(s)} ({counts[s]})</label>' for s in Source)
    rows = []
    for entry in entries:
        css = [f"src-{entry.source}"]
        if entry.name.startswith("FAILED"):
            css.append("failed")
        if entry.render() in cited:
            css.append("cited")
        rows.append(f'<tr class="{" ".join(css)}"><td class="num">{entry.seconds:.3f}</td>'
                    f"<td>{esc(entry.source)}</td><td>{esc(entry.name)}</td>"
                    f'<td class="text">{esc(entry.text)}</td></tr>')
    note = ""
    if not record.exact_clock:
        note = ('<p class="note">Rebuilt from timeline.json: no packets or firmware lines, '
                "and server events are placed by the server's start, which comes a moment "
                "before the guest's power-on.</p>")
    # What the evidence lacks and why ("no packet capture"), as the collector noted it.
    for text in getattr(record.evidence.facts, "notes", ()):
        note += f'<p class="note">{esc(text)}</p>'
    return (f'{note}<div class="filters">show: {filters}\n'
            '<table class="grid"><thead><tr><th>seconds</th><th>source</th><th>name</th>'
            f"<th>text</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            '<p class="note">Seconds since power-on. Highlighted: the failure and the '
            "lines a cause cites.</p>")


def _artifacts(record: BootRecord, page_dir: Path) -> str:
    items = [f'<li><a href="{esc(link(path, page_dir))}">{esc(name)}</a> '
             f"<code>{esc(os.path.relpath(path, page_dir))}</code></li>"
             for name, path in record.artifacts().items()]
    return f"<ul>{''.join(items)}</ul>" if items else "<p>none found</p>"


# -- many boots -------------------------------------------------------------------------


def matrix_page(records: Sequence[BootRecord], page_dir: Path, pages: Mapping[Path, Path],
                unreadable: Sequence[str] = ()) -> str:
    """The overview of a run: a chart of all boots' stages and a table of cases, and
    a case x firmware set table when the boots span more than one set."""
    ordered = sorted(records, key=lambda r: (r.label, str(r.directory)))
    hrefs = {i: link(pages[r.directory], page_dir) for i, r in enumerate(ordered)
             if r.directory in pages}
    failed = sum(1 for r in ordered if not r.ok)
    summary = (f"<p>{len(ordered)} boots, {len(ordered) - failed} booted, {failed} failed."
               "</p>")
    chart = (matrix_chart(ordered, hrefs) + legend(ordered)
             + '<p class="note">Seconds since power-on; each colour a stage, red where the '
             "boot failed. A case's name links to its own page.</p>")
    body = [f"<h1>pxelab run: {len(ordered)} boots</h1>", summary]
    grid = set_grid(ordered)
    if len(grid.sets) > 1:  # the nightly view: what one set boots and another does not
        body.append(_section("sets", "Cases per firmware set",
                             _sets_table(grid, page_dir, pages)))
    body += [_section("stages", "Seconds per stage", chart),
             _section("cases", "Cases", _cases_table(ordered, hrefs, page_dir))]
    if unreadable:
        items = "".join(f"<li>{esc(text)}</li>" for text in unreadable)
        body.append(_section("unreadable", "Not read", f"<ul>{items}</ul>"))
    return _page(f"pxelab run: {len(ordered)} boots", "\n".join(body))


def _cases_table(records: Sequence[BootRecord], hrefs: Mapping[int, str],
                 page_dir: Path) -> str:
    rows = []
    for index, record in enumerate(records):
        name = esc(record.label)
        if index in hrefs:
            name = f'<a href="{esc(hrefs[index])}">{name}</a>'
        verdict = _verdict(record)
        stage = "" if record.ok else esc(record.timeline.failed_stage or "userspace")
        cause = "" if record.ok else _cause_line(record)
        where = esc(os.path.relpath(record.directory, page_dir))
        rows.append(f"<tr><td>{name}</td><td>{verdict}</td><td>{stage}</td><td>{cause}</td>"
                    f'<td class="num">{record.seconds:.1f}</td><td><code>{where}</code></td>'
                    "</tr>")
    return ('<table class="grid"><thead><tr><th>case</th><th>result</th><th>failed stage'
            "</th><th>cause</th><th>seconds</th><th>directory</th></tr></thead>"
            f'<tbody id="case-rows">{"".join(rows)}</tbody></table>')


def _verdict(record: BootRecord) -> str:
    return ('<span class="verdict ok">ok</span>' if record.ok
            else '<span class="verdict failed">FAILED</span>')


# -- many boots, per firmware set -------------------------------------------------------


def _sets_table(grid: SetGrid, page_dir: Path, pages: Mapping[Path, Path]) -> str:
    """A row per case, a column per set; the head names each set's key package versions."""
    names = "".join(f'<th data-set="{esc(s)}">{esc(s)}<br><span class="note">'
                    f"{esc(grid.origins[s])}</span></th>" for s in grid.sets)
    versions = "".join(f'<td class="versions" data-set="{esc(s)}">'
                       f"{_key_versions(grid.versions[s])}</td>" for s in grid.sets)
    rows = []
    for case in grid.cases:
        cells = "".join(_set_cell(grid, case, s, page_dir, pages) for s in grid.sets)
        css = ' class="mixed"' if grid.mixed(case) else ""
        rows.append(f'<tr{css} data-case="{esc(case)}"><td>{esc(case)}</td>{cells}</tr>')
    totals = "".join(f'<td data-set="{esc(s)}">{ok} of {made}</td>'
                     for s in grid.sets for ok, made in [grid.booted(s)])
    return (f'<table class="grid sets"><thead><tr><th>case</th>{names}</tr>'
            f'<tr id="set-versions"><td>versions</td>{versions}</tr></thead>'
            f'<tbody id="set-rows">{"".join(rows)}</tbody>'
            f'<tfoot><tr id="set-totals"><td>booted</td>{totals}</tr></tfoot></table>'
            '<p class="note">Seconds to userspace; for a failure the cause the diagnosis '
            "named. Highlighted: a case that booted with some sets and failed with others. "
            "Versions: the key firmware packages each set's boots recorded. A verdict links "
            "to the boot's own page.</p>")


def _key_versions(versions: Mapping[str, Sequence[str]]) -> str:
    if not versions:
        return "not recorded"
    return "<br>".join(f"{esc(name)} {esc(' | '.join(found))}"
                       for name, found in versions.items())


def _set_cell(grid: SetGrid, case: str, fwset: str, page_dir: Path,
              pages: Mapping[Path, Path]) -> str:
    boots = grid.boots(case, fwset)
    if not boots:
        return f'<td class="none" data-set="{esc(fwset)}">not run</td>'
    shown = "<br>".join(_set_boot(record, page_dir, pages) for record in boots)
    return f'<td data-set="{esc(fwset)}">{shown}</td>'


def _set_boot(record: BootRecord, page_dir: Path, pages: Mapping[Path, Path]) -> str:
    """One boot in a set's cell: verdict (linked to its page), seconds or cause code."""
    verdict = _verdict(record)
    if record.directory in pages:
        verdict = f'<a href="{esc(link(pages[record.directory], page_dir))}">{verdict}</a>'
    if record.ok:
        return f'<span class="boot">{verdict} {record.seconds:.1f}s</span>'
    stage = record.timeline.failed_stage or "userspace"
    title = f"failed at {stage} after {record.seconds:.1f}s"
    if record.cause is not None:
        why = f"<code>{esc(record.cause.code)}</code>"
        title += f": {record.cause.summary}"
    else:
        why = esc(f"at {stage}, " + ("no cause named" if record.diagnosis is not None
                                     else "not diagnosed"))
    return f'<span class="boot" title="{esc(title)}">{verdict} {why}</span>'
