"""trivia.reward."""
