"""What raytuner lets Ray Tune forget about a finished trial (driver memory per trial, issue 9)."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.trainable.metadata import _TrainingRunMetadata

from raytuner.execution.callbacks import _release_running_windows


def test_a_finished_trial_keeps_its_averages_but_not_rays_running_windows() -> None:
    metadata = _TrainingRunMetadata()
    for step in range(1, 21):
        for metric in ("loss", "accuracy", "time_total_s"):
            metadata.update_metric(metric, float(step), step=step)
    before = len(metadata.get_json_state())
    analysis = {metric: dict(values) for metric, values in metadata.metric_analysis.items()}

    _release_running_windows(SimpleNamespace(run_metadata=metadata))

    assert metadata.metric_n_steps == {}
    assert metadata.metric_analysis == analysis  # last-5/last-10 averages as Ray computed them
    assert metadata.metric_analysis["loss"]["last-5-avg"] == 18.0
    assert len(metadata.get_json_state()) < before / 2  # the cached JSON is rebuilt without them
    _release_running_windows(SimpleNamespace(run_metadata=metadata))  # twice is harmless
    _release_running_windows(SimpleNamespace())  # a stub trial without metadata too
