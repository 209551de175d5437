"""trivia.tables."""
