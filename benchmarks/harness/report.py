"""Rows of the table: one workload on one backend, our figure beside each baseline's,
the targets of the performance issue checked, printed as one table and written as JSON.

A ratio is always a speed ratio: how many times as fast as the baseline we are (our
rate / its rate, or its time / our time), so above 1 is faster whatever the unit."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Baseline columns, in table order.
RAW = "raw"
ES = "eventsourcing"
PEER = "peer"
#: Another reference figure measured in the same run (the sync store beside the async
#: facade, the naive fold beside replay).
REF = "reference"
COLUMNS = (RAW, ES, PEER, REF)


@dataclass(frozen=True)
class Target:
    """``factor`` times a baseline's figure (``against`` one of ``COLUMNS``), or a bound on
    our own figure (``limit``: at least it for rates, at most it for times and sizes)."""

    against: str | None = None
    factor: float = 1.0
    limit: float | None = None

    def describe(self, unit: str, peer: str | None) -> str:
        if self.against is not None:
            name = peer if self.against == PEER and peer else self.against
            return f">= {self.factor:g}x {name}"
        bound = ">=" if unit.endswith("/s") else "<"
        return f"{bound} {self.limit:,g} {unit}"


@dataclass
class Row:
    workload: str
    backend: str
    unit: str
    ours: float | None = None
    baselines: dict[str, float | None] = field(default_factory=dict)
    peer: str | None = None
    targets: list[Target] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def higher_is_better(self) -> bool:
        return self.unit.endswith("/s")

    def ratio(self, against: str) -> float | None:
        theirs = self.baselines.get(against)
        if self.ours is None or theirs is None or self.ours <= 0 or theirs <= 0:
            return None
        return self.ours / theirs if self.higher_is_better else theirs / self.ours

    def checks(self) -> list[dict[str, Any]]:
        out = []
        for target in self.targets:
            if target.against is not None:
                ratio = self.ratio(target.against)
                met = None if ratio is None else ratio >= target.factor
            else:
                ratio = None
                assert target.limit is not None
                if self.ours is None:
                    met = None
                elif self.higher_is_better:
                    met = self.ours >= target.limit
                else:
                    met = self.ours < target.limit
            out.append(
                {
                    "target": target.describe(self.unit, self.peer),
                    "against": target.against,
                    "ratio": ratio,
                    "met": met,
                }
            )
        return out

    def met(self) -> bool | None:
        results = [check["met"] for check in self.checks()]
        if not results or any(result is None for result in results):
            return None
        return all(results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "backend": self.backend,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "ours": self.ours,
            "baselines": dict(self.baselines),
            "peer": self.peer,
            "ratios": {name: self.ratio(name) for name in self.baselines},
            "targets": self.checks(),
            "met": self.met(),
            "note": self.note,
            "extra": self.extra,
        }


def skipped(workload: str, backend: str, unit: str, note: str, **kw: Any) -> Row:
    return Row(workload, backend, unit, note=note, **kw)


# formatting -----------------------------------------------------------------------------


def figure(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit.endswith("/s"):
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def _label(row: Row, column: str) -> str:
    if column == PEER and row.peer:
        return row.peer
    if column == REF:
        return str(row.extra.get("reference", REF))
    return column


def _ratio_cell(row: Row) -> str:
    if row.targets and any(t.against for t in row.targets):
        parts = []
        for check in row.checks():
            if check["against"] is None:
                continue
            ratio = check["ratio"]
            label = _label(row, check["against"])
            parts.append("-" if ratio is None else f"{ratio:.2f}x {label}")
        return "; ".join(parts)
    # No ratio target: the first baseline there is, for information.
    for name in COLUMNS:
        ratio = row.ratio(name)
        if ratio is not None:
            return f"{ratio:.2f}x {_label(row, name)}"
    return "-"


def _result_cell(row: Row) -> str:
    if row.ours is None:
        return "skipped"
    if not row.targets:
        return ""
    met = row.met()
    return "-" if met is None else ("met" if met else "MISSED")


def table(rows: list[Row]) -> str:
    head = (
        "workload",
        "backend",
        "unit",
        "ours",
        "raw driver",
        "eventsourcing",
        "peer",
        "other",
        "ratio",
        "target",
        "result",
    )
    lines: list[tuple[str, ...]] = [head]
    notes: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        peer = figure(row.baselines.get(PEER), row.unit)
        if row.peer and row.baselines.get(PEER) is not None:
            peer = f"{peer} {row.peer}"
        ref = figure(row.baselines.get(REF), row.unit)
        if row.extra.get("reference") and row.baselines.get(REF) is not None:
            ref = f"{ref} {row.extra['reference']}"
        lines.append(
            (
                row.workload,
                row.backend,
                row.unit,
                figure(row.ours, row.unit),
                figure(row.baselines.get(RAW), row.unit),
                figure(row.baselines.get(ES), row.unit),
                peer,
                ref,
                _ratio_cell(row),
                "; ".join(t.describe(row.unit, row.peer) for t in row.targets),
                _result_cell(row),
            )
        )
        if row.note:
            notes.setdefault((row.backend, row.note), []).append(row.workload)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    numeric = {3, 4, 5}
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in numeric and n else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("-" * len(out[0]))
    if notes:
        out.append("")
        out.append("notes:")
        for (backend, note), names in notes.items():
            out.append(f"  [{backend}] {', '.join(names)}: {note}")
    return "\n".join(out)


def summary(rows: list[Row]) -> str:
    checked = [row.met() for row in rows if row.targets]
    met = sum(1 for m in checked if m is True)
    missed = sum(1 for m in checked if m is False)
    unknown = sum(1 for m in checked if m is None)
    return f"targets: {met} met, {missed} missed, {unknown} not measured"


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "rows": [row.to_dict() for row in rows]}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
