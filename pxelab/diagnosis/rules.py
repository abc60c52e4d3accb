"""The diagnosis rules, most specific first (see pxelab.diagnosis)."""

from __future__ import annotations

from pxelab.diagnosis.model import Rule

RULES: tuple[Rule, ...] = ()
