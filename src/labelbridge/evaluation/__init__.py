"""Evaluation: a confusion matrix summed over images and processes, IoU / mIoU /
accuracy as the Cityscapes scripts define them, projected evaluation through an
ontology mapping, model / prediction-folder evaluation on dataset readers, and one
model on several named evaluation sets."""

from labelbridge.evaluation.confusion import ConfusionMatrix
from labelbridge.evaluation.metrics import SegmentationMetrics, metrics_from_counts
from labelbridge.evaluation.model_eval import evaluate_model, evaluate_prediction_folder
from labelbridge.evaluation.projected import (
    evaluate_label_maps,
    project_predictions,
    projection_table,
)
from labelbridge.evaluation.sets import SetScores, evaluate_on_sets

__all__ = [
    "ConfusionMatrix",
    "SegmentationMetrics",
    "SetScores",
    "evaluate_label_maps",
    "evaluate_model",
    "evaluate_on_sets",
    "evaluate_prediction_folder",
    "metrics_from_counts",
    "project_predictions",
    "projection_table",
]
