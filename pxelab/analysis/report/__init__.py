"""Reports of boots for people: plain text (pytest, the terminal) and an HTML page.

:mod:`pxelab.analysis.report.text` renders one boot as text, :mod:`pxelab.analysis.report.html`
a boot or a whole matrix run as a self-contained page (``pxelab report``),
:mod:`pxelab.analysis.report.boots` reads boots back from their artifact directories,
:mod:`pxelab.analysis.report.sets` lays a run's boots out per firmware set.
"""

from pxelab.analysis.report.boots import BootRecord, Stage, find_boots, load_boot, stages
from pxelab.analysis.report.text import render_boot, render_causes

__all__ = ["BootRecord", "Stage", "find_boots", "load_boot", "render_boot", "render_causes",
           "stages"]
