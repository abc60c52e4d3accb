"""Inline SVG charts of where a boot's time went.

:func:`stage_chart`: one boot, a horizontal bar per stage placed on the time
axis (from the previous milestone to this one), the failed stage red.
:func:`matrix_chart`: many boots, one row each, their stages stacked, so the
cases compare at a glance. Colours are fixed per stage name across pages.
Everything that came from a boot is escaped (:func:`esc`).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence

from pxelab.analysis.report.boots import BootRecord, Stage, stages
from pxelab.scenarios.cases import SCENARIOS

FAILED_COLOUR = "#d62728"
WIDTH = 960
ROW = 22
AXIS = 22  # room for the seconds above the bars

# Control characters (other than tab and newline) are shown as \xNN: console text
# can hold anything, and most of them are not allowed in an HTML document.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def esc(value: object) -> str:
    """``value`` as text safe in HTML content and in quoted attributes."""
    text = _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", str(value))
    return html.escape(text, quote=True)


def _known_stage_order() -> list[str]:
    """Every milestone name of the scenarios, in boot order: the colour index of each."""
    names: dict[str, None] = {}
    for scenario in sorted(SCENARIOS.values(), key=lambda s: s.name):
        names.update((m.name, None) for m in scenario.milestones)
    return list(names)


def stage_colours(names: Iterable[str]) -> dict[str, str]:
    """A colour per stage name, the same on every page (red is kept for failures)."""
    order = _known_stage_order()
    colours: dict[str, str] = {}
    for name in names:
        if name not in order:
            order.append(name)
        index = order.index(name)
        hue = 40 + (index * 137.508) % 280  # golden-angle steps, never red
        light = (42, 58, 72)[index % 3]
        colours[name] = f"hsl({hue:.0f},55%,{light}%)"
    return colours


def nice_step(total: float, ticks: int = 10) -> float:
    """A round tick spacing (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    raw = max(total, 1e-3) / ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1.0, 2.0, 5.0, 10.0) if m * magnitude >= raw)


def _frame(left: int, right: int, total: float,
           rows: int) -> tuple[float, float, float, list[str]]:
    """A chart of ``rows`` rows with ``left`` and ``right`` pixels for labels: the plot's
    width, the seconds it spans (never 0), the chart's height and its time axis."""
    plot = WIDTH - left - right
    total = total or 1.0
    height = AXIS + ROW * rows + 4
    return plot, total, height, _axis(left, plot, total, height)


def _axis(left: float, plot: float, total: float, height: float) -> list[str]:
    step = nice_step(total)
    parts = []
    for index in range(int(total / step) + 1):
        seconds = index * step
        x = left + seconds / total * plot
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{AXIS - 4}" x2="{x:.1f}" '
                     f'y2="{height:.1f}" stroke="#ddd"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{AXIS - 8}" text-anchor="middle">'
                     f'{seconds:g}s</text>')
    return parts


def _bar(stage: Stage, x: float, y: float, width: float, colour: str, *,
         extra: str = "") -> str:
    fill = FAILED_COLOUR if stage.failed else colour
    verdict = " (FAILED here)" if stage.failed else ""
    title = (f"{stage.name}: {stage.start:.2f}s \u2192 {stage.end:.2f}s, "
             f"{stage.seconds:.2f}s{verdict}{extra}")
    css = "bar failed" if stage.failed else "bar"
    return (f'<rect class="{css}" data-stage="{esc(stage.name)}" x="{x:.1f}" y="{y:.1f}" '
            f'width="{max(width, 1.0):.1f}" height="{ROW - 6}" fill="{fill}">'
            f'<title>{esc(title)}</title></rect>')


def stage_chart(record: BootRecord) -> str:
    """One boot: a bar per stage on the time axis, its name left, its seconds right."""
    found = stages(record.timeline)
    colours = stage_colours(s.name for s in found)
    left = 150
    plot, total, height, parts = _frame(left, 110, max((s.end for s in found), default=0.0),
                                        len(found))
    for index, stage in enumerate(found):
        y = AXIS + index * ROW
        x = left + stage.start / total * plot
        width = stage.seconds / total * plot
        label = "FAILED " + stage.name if stage.failed else stage.name
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{esc(label)}</text>')
        parts.append(_bar(stage, x, y + 3, width, colours[stage.name]))
        parts.append(f'<text class="secs" x="{x + max(width, 1.0) + 4:.1f}" y="{y + 14}">'
                     f'{stage.seconds:.2f}s</text>')
    return _svg("stage-chart", height, parts,
                f"time per stage of {record.label}: {len(found)} stages, {total:.1f}s")


def matrix_chart(records: Sequence[BootRecord], hrefs: Mapping[int, str]) -> str:
    """Many boots: a row each, their stages stacked to userspace (or to the failure).

    ``hrefs`` maps a record's index to the page its label links to.
    """
    colours = stage_colours(s.name for r in records for s in stages(r.timeline))
    left = 300
    plot, total, height, parts = _frame(left, 140, max((r.seconds for r in records),
                                                       default=0.0), len(records))
    for index, record in enumerate(records):
        y = AXIS + index * ROW
        label = record.label if len(record.label) <= 44 else record.label[:43] + "\u2026"
        text = (f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{esc(label)}'
                f'<title>{esc(record.label)}</title></text>')
        href = hrefs.get(index)
        parts.append(f'<a href="{esc(href)}">{text}</a>' if href else text)
        parts.append(f'<g class="row" data-case="{esc(record.label)}">')
        for stage in stages(record.timeline):
            parts.append(_bar(stage, left + stage.start / total * plot, y + 3,
                              stage.seconds / total * plot, colours[stage.name],
                              extra=f" in {record.label}"))
        parts.append("</g>")
        end = left + record.seconds / total * plot
        verdict = (f"{record.seconds:.1f}s" if record.ok
                   else f"\u2717 {record.timeline.failed_stage or 'userspace'} "
                        f"{record.seconds:.1f}s")
        parts.append(f'<text class="secs" x="{end + 4:.1f}" y="{y + 14}">{esc(verdict)}</text>')
    return _svg("matrix-chart", height, parts,
                f"seconds per stage of {len(records)} boots")


def legend(records: Sequence[BootRecord]) -> str:
    """The stage colours of ``records`` as an HTML list, the failure colour last."""
    names = dict.fromkeys(s.name for r in records for s in stages(r.timeline) if not s.failed)
    colours = stage_colours(names)
    items = [f'<li><span class="swatch" style="background:{colours[n]}"></span>{esc(n)}</li>'
             for n in names]
    items.append(f'<li><span class="swatch" style="background:{FAILED_COLOUR}"></span>'
                 "failed stage</li>")
    return f'<ul class="legend">{"".join(items)}</ul>'


def _svg(ident: str, height: float, parts: list[str], title: str) -> str:
    return (f'<svg id="{ident}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" '
            f'font-family="sans-serif" font-size="12"><title>{esc(title)}</title>'
            + "".join(parts) + "</svg>")
