"""The personal-information scanner: reads a source batch by batch, runs the detectors over each
column, and keeps per (part, field, detector) counts and masked samples only.

Memory stays flat: one batch is in memory at a time and the running totals are a few numbers per
field. Full identifiers exist only inside a batch being checked; the report holds masked samples.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from commonwatch.datasec import readers
from commonwatch.datasec.detectors import (
    Detector,
    ScanContext,
    build_detectors,
    find,
    identifier_rules,
    mask,
)
from commonwatch.i18n import pick

TEXT_FIELD = "text"


@dataclass
class Finding:
    part: str
    field: str
    detector: str
    count: int
    rows: int
    rows_total: int
    share: float
    confidence: float
    pi_category: str | None
    sensitive_category: str | None
    samples: list[str]
    minors: int = 0
    #: A possible match only (it failed its check digit): shown apart and counted nowhere.
    possible: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScanReport:
    source: str
    kind: str
    rows: int
    parts: dict[str, int]
    findings: list[Finding] = field(default_factory=list)
    sampled: bool = False

    @property
    def confirmed(self) -> list[Finding]:
        """Findings that passed their checks; only these give the scan its categories."""
        return [f for f in self.findings if not f.possible]

    @property
    def possible(self) -> list[Finding]:
        return [f for f in self.findings if f.possible]

    @property
    def pi_categories(self) -> list[str]:
        return sorted({f.pi_category for f in self.confirmed if f.pi_category})

    @property
    def sensitive_categories(self) -> list[str]:
        cats = {f.sensitive_category for f in self.confirmed if f.sensitive_category}
        if any(f.minors for f in self.confirmed):
            cats.add("minors_under_14")
        return sorted(cats)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "rows": self.rows, "parts": self.parts,
                "sampled": self.sampled, "pi_categories": self.pi_categories,
                "sensitive_categories": self.sensitive_categories,
                "findings": [f.as_dict() for f in self.confirmed],
                "possible_findings": [f.as_dict() for f in self.possible]}


@dataclass
class _Tally:
    count: int = 0
    rows: int = 0
    confidence_sum: float = 0.0
    minors: int = 0
    samples: list[str] = field(default_factory=list)


class Scanner:
    """Accumulates findings over batches; ``samples`` masked examples are kept per finding."""

    def __init__(self, today: date, data_dir: Path | None = None, samples: int = 3):
        self.table = identifier_rules(data_dir)
        self.ctx = ScanContext(today=today, table=self.table)
        self.detectors: list[Detector] = build_detectors(self.table)
        self.samples = samples
        self._tallies: dict[tuple[str, str, str], _Tally] = {}
        self._rows: dict[str, int] = {}

    def add(self, part: str, frame: pl.DataFrame) -> None:
        """Scan one batch of one part (table, sheet, file)."""
        self.tally(part, frame.height, self.summarise(frame))

    def summarise(self, frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
        """Per column of one batch, what each detector found there (counts and a few values).
        Reads only the scanner's rules, so batches may be summarised in several threads at once."""
        out = []
        for column in frame.columns:
            header = "" if column == TEXT_FIELD else column
            found = find(frame[column], header, self.ctx, self.detectors)
            if found.height == 0:
                continue
            out.append((column, found.group_by("detector").agg(
                pl.len().alias("count"), pl.col("row").n_unique().alias("rows"),
                pl.col("confidence").sum().alias("conf"), pl.col("minor").sum().alias("minors"),
                pl.col("value").unique(maintain_order=True).head(self.samples).alias("examples"))))
        return out

    def tally(self, part: str, rows: int, summaries: list[tuple[str, pl.DataFrame]]) -> None:
        """Add one batch's :meth:`summarise` to the running totals (batches in their reading order)."""
        self._rows[part] = self._rows.get(part, 0) + rows
        for column, summary in summaries:
            for row in summary.iter_rows(named=True):  # one row per detector, not per value
                tally = self._tallies.setdefault((part, column, row["detector"]), _Tally())
                tally.count += row["count"]
                tally.rows += row["rows"]
                tally.confidence_sum += row["conf"]
                tally.minors += row["minors"]
                for value in row["examples"]:
                    masked = mask(value, row["detector"])
                    if len(tally.samples) < self.samples and masked not in tally.samples:
                        tally.samples.append(masked)

    def report(self, source: str, kind: str, sampled: bool = False) -> ScanReport:
        findings = []
        for (part, column, detector), t in sorted(self._tallies.items()):
            spec = self.table["detectors"][detector]
            total = self._rows.get(part, 0)
            findings.append(Finding(
                part=part, field=column, detector=detector, count=t.count, rows=t.rows, rows_total=total,
                share=round(t.rows / total, 6) if total else 0.0,
                confidence=round(t.confidence_sum / t.count, 3) if t.count else 0.0,
                pi_category=spec.get("pi_category"), sensitive_category=spec.get("sensitive_category"),
                samples=list(t.samples), minors=t.minors, possible=bool(spec.get("possible"))))
        return ScanReport(source=source, kind=kind, rows=sum(self._rows.values()), parts=dict(self._rows),
                          findings=findings, sampled=sampled)


def scan_batches(batches: Iterable[tuple[str, pl.DataFrame]], *, source: str, kind: str, today: date,
                 data_dir: Path | None = None, sampled: bool = False) -> ScanReport:
    """Scan every batch; an error while reading leaves nothing behind (the caller records nothing)."""
    scanner = Scanner(today, data_dir)
    # Polars runs a query without the GIL, so batches are summarised in one thread per core; at most
    # that many batches are in memory at once, and they are tallied in their reading order.
    width = max(1, os.cpu_count() or 1)
    pending: deque[tuple[str, int, Future]] = deque()
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="datasec-scan") as pool:
        for part, frame in batches:
            pending.append((part, frame.height, pool.submit(scanner.summarise, frame)))
            del frame
            if len(pending) >= width:
                part_done, rows, future = pending.popleft()
                scanner.tally(part_done, rows, future.result())
        while pending:
            part_done, rows, future = pending.popleft()
            scanner.tally(part_done, rows, future.result())
    return scanner.report(source, kind, sampled)


def scan_path(path: Path, *, today: date, data_dir: Path | None = None, kind: str | None = None,
              limits: readers.Limits = readers.Limits(), display_name: str | None = None) -> ScanReport:
    """Scan a file (CSV, TSV, JSON, JSON lines, Parquet, XLSX, text; gzip or zip archives of them)."""
    name = display_name or path.name
    batches = _renamed(readers.read_path(path, limits, kind), path.name, name)
    guessed = kind or readers.kind_of(name)
    return scan_batches(batches, source=name, kind=guessed, today=today, data_dir=data_dir)


def _renamed(batches: Iterator[tuple[str, pl.DataFrame]], old: str, new: str) -> Iterator[tuple[str, pl.DataFrame]]:
    for part, frame in batches:
        yield (new + part[len(old):] if part.startswith(old) else part), frame


def scan_database(url: str, *, today: date, data_dir: Path | None = None, sample_rows: int | None = 10_000,
                  tables: list[str] | None = None) -> ScanReport:
    """Scan the tables of a database (the first ``sample_rows`` rows of each, or all with None)."""
    batches = readers.read_database(url, sample_rows=sample_rows, tables=tables)
    return scan_batches(batches, source=readers.redact_url(url), kind="database", today=today, data_dir=data_dir,
                        sampled=sample_rows is not None)


def detector_label(name: str, data_dir: Path | None = None) -> str:
    spec = identifier_rules(data_dir)["detectors"].get(name)
    return pick(spec["en"], spec["zh"]) if spec else name


def is_possible(detector: str, data_dir: Path | None = None) -> bool:
    """True for a detector whose findings are possible matches only (the rules' ``possible``)."""
    spec = identifier_rules(data_dir)["detectors"].get(detector)
    return bool(spec and spec.get("possible"))


def possible_reason(detector: str, data_dir: Path | None = None) -> dict[str, str]:
    """Why a possible match is not counted, in both languages (from the rules file)."""
    spec = identifier_rules(data_dir)["detectors"].get(detector) or {}
    reason = spec.get("possible_reason") or {}
    return {"en": reason.get("en", ""), "zh": reason.get("zh", "")}


def category_label(code: str | None, data_dir: Path | None = None) -> str:
    if not code:
        return ""
    table = identifier_rules(data_dir)
    spec = table["sensitive_categories"].get(code) or table["pi_categories"].get(code)
    return pick(spec["en"], spec["zh"]) if spec else code
