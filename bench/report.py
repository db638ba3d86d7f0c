"""The table (rich) and the JSON file of a run."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import Figure


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit in ("ms",) or abs(value) < 100:
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def table(figures: Sequence[Figure], title: str = "eportfolio benchmarks") -> None:
    grid = Table(title=title, show_lines=False)
    for column in ("#", "figure", "backend", "value", "baseline (same run)", "ratio", "target"):
        grid.add_column(column, justify="right" if column in ("value", "ratio") else "left")
    grid.add_column("result")
    for f in figures:
        verdict = {True: "[green]PASS[/green]", False: "[red]MISS[/red]", None: ""}[f.passed]
        baseline = "" if f.baseline is None else f"{_number(f.baseline, f.unit)} {f.unit}"
        grid.add_row(
            f.figure,
            f.name,
            f.backend,
            f"{_number(f.value, f.unit)} {f.unit}",
            f"{baseline} ({f.baseline_label})" if f.baseline_label else baseline,
            "" if f.ratio is None else f"{f.ratio:.2f}x",
            f.target,
            verdict,
        )
    Console(width=200).print(grid)
    for f in figures:
        if f.notes:
            print(f"  [{f.figure}] {f.name.strip()}: {f.notes}")


def markdown(figures: Sequence[Figure]) -> str:
    """The same table as Markdown, for bench/README.md."""
    lines = [
        "| # | figure | backend | value | baseline (same run) | ratio | target | result |",
        "| --- | --- | --- | ---: | --- | ---: | --- | --- |",
    ]
    for f in figures:
        baseline = "" if f.baseline is None else f"{_number(f.baseline, f.unit)} {f.unit}"
        if f.baseline_label:
            baseline += f" ({f.baseline_label})"
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}x"
        verdict = {True: "PASS", False: "**MISS**", None: ""}[f.passed]
        lines.append(
            f"| {f.figure} | {f.name.strip()} | {f.backend} | {_number(f.value, f.unit)} {f.unit}"
            f" | {baseline} | {ratio} | {f.target} | {verdict} |"
        )
    return "\n".join(lines)


def write_json(path: Path, figures: Sequence[Figure], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "meta": meta | {"python": platform.python_version(), "machine": platform.machine()},
        "figures": [f.as_json() for f in figures],
    }
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
