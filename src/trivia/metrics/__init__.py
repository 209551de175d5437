"""trivia.metrics."""
