"""ModelOpsX: an MLOps pipeline for pedestrian detection on Basin, DVC and Kubeflow Pipelines."""

__version__ = "0.1.0"
