"""Counting of bad input lines by reason, with a few ``file:line`` examples each."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from allmrec_pipeline.errors import DataError

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ValueRanges:
    """The accepted values of the read fields (closed ranges; ``None``: unbounded). A value outside its range
    makes its line bad (``timestamp_out_of_range`` / ``rating_out_of_range``); ``source`` names the config
    section the ranges come from, for the messages."""

    timestamp: tuple[float, float] | None = None  # seconds since 1970-01-01 UTC
    rating: tuple[float, float] | None = None
    source: str = "ingest.source"


@dataclass
class BadLineLog:
    """Bad lines seen while reading one source, grouped by reason.

    A bad line never stops a run by itself: it is counted here, and :meth:`check` fails only when the bad
    fraction of a file exceeds the configured ``max_bad_fraction``.
    """

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    lines_read: Counter = field(default_factory=Counter)  # per file
    bad_per_file: Counter = field(default_factory=Counter)
    first_bad: dict[str, str] = field(default_factory=dict)  # file -> "file:line (reason): detail"
    ranges: ValueRanges = field(default_factory=ValueRanges)  # what the readers accept

    def record(self, reason: str, file: str, line_no: int, detail: str = "") -> None:
        """Count one bad line of ``file`` (1-based ``line_no``) under ``reason``."""
        self.counts[reason] += 1
        self.bad_per_file[file] += 1
        where = f"{file}:{line_no}"
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(where)
        if file not in self.first_bad:
            suffix = f": {detail}" if detail else ""
            self.first_bad[file] = f"{where} ({reason}){suffix}"

    def add_lines(self, file: str, n_lines: int) -> None:
        """Add ``n_lines`` read lines (good or bad) to the total of ``file``."""
        self.lines_read[file] += n_lines

    def check(self, max_bad_fraction: float) -> None:
        """Raise :class:`DataError` for the first file whose bad fraction exceeds ``max_bad_fraction``."""
        for file, n_bad in self.bad_per_file.items():
            total = max(self.lines_read[file], 1)
            if n_bad / total > max_bad_fraction:
                raise DataError(
                    f"{file}: {n_bad} of {total} lines are bad ({n_bad / total:.2%} > max_bad_fraction="
                    f"{max_bad_fraction}); first bad line: {self.first_bad[file]}. "
                    f"Counts by reason: {dict(self.counts)}"
                )

    def to_report(self) -> dict:
        """The JSON-ready summary that goes into the ingest report."""
        return {
            "total": int(sum(self.counts.values())),
            "by_reason": {reason: int(n) for reason, n in sorted(self.counts.items())},
            "examples": {reason: list(ex) for reason, ex in sorted(self.examples.items())},
            "lines_read": {file: int(n) for file, n in self.lines_read.items()},
        }
