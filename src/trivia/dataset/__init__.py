"""Training data: the row format, its validation, and the sources rows are built from."""

from trivia.dataset.pubtabnet import pubtabnet_html
from trivia.dataset.row import IMAGE_TAG, Message, QAPair, TrainingRow, row_problems
from trivia.dataset.validate import Problem, ValidationReport, missing_images, validate_jsonl

__all__ = [
    "IMAGE_TAG",
    "Message",
    "Problem",
    "QAPair",
    "TrainingRow",
    "ValidationReport",
    "missing_images",
    "pubtabnet_html",
    "row_problems",
    "validate_jsonl",
]
