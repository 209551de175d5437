"""Table commands: `trivia teds`, `trivia convert`."""
