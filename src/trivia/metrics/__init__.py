"""Table-recognition metrics: TEDS (PubTabNet's definition, fast) and QA-F1."""

from trivia.metrics.qa_f1 import extract_answer, qa_f1
from trivia.metrics.teds import TableTooLarge, pairwise_teds, teds

__all__ = ["TableTooLarge", "extract_answer", "pairwise_teds", "qa_f1", "teds"]
