"""Sections of ``docs/benchmarks.md`` that other benchmark tools own, each kept between its markers.

The Kodak benchmark rewrites the report; the speed tools (``cnnjpeg bench --speed``,
``scripts/scroll_stall.py``) and the restore benchmark (``cnnjpeg bench --restore``)
leave JSON beside it, and each section is rebuilt from those files whichever tool ran last.
"""

from __future__ import annotations

import os
from pathlib import Path

SECTIONS = ("speed", "restore")


def _section(name: str, folder: Path) -> str:
    if name == "speed":
        from .bench_speed import speed_section

        return speed_section(folder)
    from .bench_restore import restore_section

    return restore_section(folder)


def update_report(report: str | os.PathLike) -> None:
    """Put each section of the report's folder between its markers in ``report`` (appended where
    the report has none yet; a section with no figures is left out)."""
    from ..format.container import write_atomic

    report = Path(report)
    if not report.exists():
        return
    text = report.read_text()
    for name in SECTIONS:
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        body = _section(name, report.parent)
        section = f"{begin}\n{body}{end}\n" if body else ""
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + section + rest.split(end, 1)[1].lstrip("\n")
        elif section:
            text = text.rstrip("\n") + "\n\n" + section
    write_atomic(report, text.encode())
