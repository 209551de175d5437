"""The GRPO trainer plugin: reward functions, filtering, failure masking and launch.

Everything here except ``plugin`` and ``grpo_trainer`` is pure Python and imports neither torch
nor ms-swift, so it is testable (and usable by ``trivia train --dry-run``) without the ``train``
extra. ``plugin.py`` is the file handed to ``swift rlhf --external_plugins``.
"""
