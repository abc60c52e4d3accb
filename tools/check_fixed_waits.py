#!/usr/bin/env python3
"""Check every citation of pxelab/data/firmware/fixed-waits.toml against EDK2's source.

Each citation reads ``file:line function: what happens there``. For every release of
the table, at its ``read_at`` ref of a tianocore/edk2 git directory, the tool checks
that the file exists, that ``line`` lies in ``function`` (the nearest function
definition above it, EDK2's ``Name (`` at the start of a line) and that the line holds
at least one identifier the citation names (``mPxeDhcpTimeout``, ``EFI_NOT_READY``...).

    .venv/bin/python tools/check_fixed_waits.py /path/to/edk2.git [--table FILE]

Exit status 1 if a citation does not hold; each one that does not is printed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from pxelab.machine.fixed_waits import load_table

_CITE = re.compile(r"^(?P<file>[\w./-]+):(?P<line>\d+)(?: (?P<function>\w+))?: (?P<what>.+)$")
_FUNCTION = re.compile(r"^(\w+) \($")
_IDENTIFIER = re.compile(r"\b(?:[A-Z][A-Z0-9]*_[A-Z0-9_]+|m?[A-Z][a-z]\w*[a-z0-9]\w*)\b")


def source_lines(git_dir: Path, ref: str, path: str, cache: dict[tuple[str, str], list[str]]
                 ) -> list[str] | None:
    if (ref, path) not in cache:
        shown = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{ref}:{path}"],
                               capture_output=True, text=True, check=False)
        cache[ref, path] = shown.stdout.splitlines() if shown.returncode == 0 else []
    return cache[ref, path] or None


def enclosing_function(lines: list[str], number: int) -> str | None:
    for text in reversed(lines[:number]):
        if found := _FUNCTION.match(text):
            return found.group(1)
    return None


def check(git_dir: Path, table_path: Path | None) -> list[str]:
    problems: list[str] = []
    cache: dict[tuple[str, str], list[str]] = {}
    table = load_table(table_path)
    for version, release in table.releases.items():
        for wait in release.waits.values():
            for cite in wait.cite:
                where = f"[{version}.{wait.name}] {cite}"
                parsed = _CITE.match(cite)
                if parsed is None:
                    problems.append(f"{where}: not 'file:line function: what'")
                    continue
                lines = source_lines(git_dir, release.read_at, parsed["file"], cache)
                number = int(parsed["line"])
                if lines is None or number > len(lines):
                    problems.append(f"{where}: no such line at {release.read_at}")
                    continue
                text = lines[number - 1]
                function = parsed["function"]
                if function and enclosing_function(lines, number) != function:
                    problems.append(f"{where}: line {number} is in "
                                    f"{enclosing_function(lines, number)}, not {function}")
                names = set(_IDENTIFIER.findall(parsed["what"])) - {function}
                if names and not any(name in text for name in names):
                    problems.append(f"{where}: line {number} names none of "
                                    f"{sorted(names)}: {text.strip()!r}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("git_dir", type=Path, help="a tianocore/edk2 git directory")
    parser.add_argument("--table", type=Path, help="default: pxelab/data/firmware/fixed-waits.toml")
    args = parser.parse_args()
    problems = check(args.git_dir, args.table)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} citation(s) do not hold" if problems else "every citation holds")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
