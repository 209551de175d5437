"""Cheap checks on a model completion: which format it is in and whether it was cut off."""

from __future__ import annotations

import re
from typing import Literal

from trivia.tables.otsl import OTSL_TAG

TableFormat = Literal["otsl", "html"]

_TABLE_TAG = re.compile(r"<table(?![\w:-])", re.IGNORECASE)


def detect_format(text: str) -> TableFormat:
    """HTML when a ``<table`` tag (any case) comes before any OTSL tag, else OTSL.

    Order, not presence: an OTSL cell may hold the text ``<table``.
    """
    table = _TABLE_TAG.search(text)
    if table is None:
        return "otsl"
    otsl = OTSL_TAG.search(text, 0, table.start())
    return "otsl" if otsl else "html"


def is_complete(text: str) -> bool:
    """Whether the completion ends as a finished table would, trailing whitespace aside.

    OTSL must end with its row terminator ``<nl>``; HTML with ``</table>`` or ``</html>`` (any
    case). A completion cut off by the length limit ends elsewhere, and empty text is never
    complete. This says nothing about the table being well formed.
    """
    end = text.rstrip()
    if not end:
        return False
    if detect_format(text) == "html":
        end = end[-8:].lower()
        return end.endswith(("</table>", "</html>"))
    return end.endswith("<nl>")
