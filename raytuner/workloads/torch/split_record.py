"""The test split's record in the experiment folder (``test_split.json``), written at the start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from raytuner.spec.loader import Experiment

TEST_SPLIT_FILE = "test_split.json"


def write_test_split(folder: Path, experiment: Experiment) -> None:
    """Write which rows are the test split, for a built-in workload that has one (else nothing):
    ``raytuner refit`` and a reader of the folder can check the split is the one the trials left out."""
    from raytuner.workloads.torch.options import (
        CnnClassifierTrainable,
        MlpClassifierTrainable,
        MlpRegressorTrainable,
    )

    options = experiment.spec.trainable
    builtin = (MlpClassifierTrainable, MlpRegressorTrainable, CnnClassifierTrainable)
    if not isinstance(options, builtin) or not options.has_test_split:
        return
    from raytuner.workloads.torch.datasets import held_out_record

    record = held_out_record(options, experiment.base_dir)
    (folder / TEST_SPLIT_FILE).write_text(json.dumps(record, indent=1) + "\n")
