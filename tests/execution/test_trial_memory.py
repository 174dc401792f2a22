"""What raytuner lets Ray Tune forget about a finished trial (driver memory per trial, issue 9)."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.trainable.metadata import _TrainingRunMetadata

from raytuner.execution.callbacks import _release_metric_history


def test_a_finished_trial_keeps_none_of_rays_metric_history() -> None:
    metadata = _TrainingRunMetadata()
    for step in range(1, 21):
        for metric in ("loss", "accuracy", "time_total_s"):
            metadata.update_metric(metric, float(step), step=step)
    metadata.num_failures = 2
    before = len(metadata.get_json_state())

    _release_metric_history(SimpleNamespace(run_metadata=metadata))

    assert metadata.metric_n_steps == {} and metadata.metric_analysis == {}
    assert metadata.num_failures == 2  # the rest of Ray's record of the trial stays
    assert len(metadata.get_json_state()) < before / 5  # the cached JSON is rebuilt without them
    _release_metric_history(SimpleNamespace(run_metadata=metadata))  # twice is harmless
    _release_metric_history(SimpleNamespace())  # a stub trial without metadata too
    metadata.update_metric("loss", 3.0, step=21)  # a trial run again records afresh
    assert metadata.metric_analysis["loss"]["last"] == 3.0
