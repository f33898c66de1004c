"""The rows of the results table, and the table as aligned plain text."""

from __future__ import annotations

from dataclasses import dataclass

HEADINGS = ("Benchmark", "Measured", "Compared with", "Ratio", "Goal", "Result")


@dataclass(frozen=True)
class Row:
    """One figure, what it is compared with, and whether it meets its goal."""

    benchmark: str
    measured: str
    reference: str
    ratio: str
    goal: str
    met: bool | None = None

    @property
    def result(self) -> str:
        if self.met is None:
            return "-"
        return "met" if self.met else "MISSED"

    def cells(self) -> tuple[str, ...]:
        return (
            self.benchmark,
            self.measured,
            self.reference,
            self.ratio,
            self.goal,
            self.result,
        )


def render(rows: list[Row]) -> str:
    lines = [HEADINGS, *(row.cells() for row in rows)]
    widths = [max(len(line[n]) for line in lines) for n in range(len(HEADINGS))]

    def text(cells: tuple[str, ...]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([text(HEADINGS), rule, *(text(cells) for cells in lines[1:])])


def seconds(value: float) -> str:
    """A duration in the unit that reads best."""
    if value < 1:
        return f"{value * 1000:.2f} ms"
    return f"{value:.2f} s"


def times(ratio: float) -> str:
    return f"{ratio:.2f}x"


def count(value: int) -> str:
    return f"{value:,}"
