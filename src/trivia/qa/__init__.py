"""trivia.qa."""
