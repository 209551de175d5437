"""Cheap checks on a model completion: which format it is in and whether it was cut off."""

from __future__ import annotations

import re
from typing import Literal

TableFormat = Literal["otsl", "html"]

_TABLE_TAG = re.compile(r"<table(?![\w:-])", re.IGNORECASE)


def detect_format(text: str) -> TableFormat:
    """HTML when `text` contains a ``<table`` tag (any case), else OTSL."""
    return "html" if _TABLE_TAG.search(text) else "otsl"


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
