"""raytuner: hyperparameter tuning for deep learning on Ray Tune, from one YAML spec."""

__version__ = "0.1.0"
