"""What each chart module returns: a drawn chart, or the reason it was left out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ChartKind(str, Enum):
    """The report's charts, in page order (also the PNG file names)."""

    PARETO_FRONT = "pareto-front"
    FINAL_MODEL = "final-model"  # only after raytuner refit
    BEST_SO_FAR = "best-so-far"
    LEARNING_CURVES = "learning-curves"
    PARALLEL_COORDINATES = "parallel-coordinates"
    IMPORTANCE = "parameter-importance"
    EARLY_STOPPING = "early-stopping"
    PBT_LINEAGE = "pbt-lineage"


@dataclass(frozen=True)
class Chart:
    kind: ChartKind
    title: str
    svg: str
    caption: str
    width: int
    height: int
    table_html: str = ""
    # what a chart of a large experiment draws, when it is not every trial (empty: everything)
    sample: str = ""


@dataclass(frozen=True)
class Omitted:
    kind: ChartKind
    title: str
    reason: str


Section = Chart | Omitted
