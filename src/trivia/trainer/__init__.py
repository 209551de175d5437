"""trivia.trainer."""
