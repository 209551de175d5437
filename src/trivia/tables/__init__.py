"""Table formats: OTSL and HTML, the logical table between them, checks and normalisation.

Pure: nothing here reads files or the network.
"""

from trivia.tables.convert import html_to_otsl, otsl_to_html, to_html
from trivia.tables.html import html_to_table, table_to_html
from trivia.tables.model import MAX_GRID_SLOTS, Cell, GridTooLarge, Structure, Table
from trivia.tables.normalize import normalize_html
from trivia.tables.otsl import otsl_to_table, table_to_otsl
from trivia.tables.validity import TableFormat, detect_format, is_complete

__all__ = [
    "MAX_GRID_SLOTS",
    "Cell",
    "GridTooLarge",
    "Structure",
    "Table",
    "TableFormat",
    "detect_format",
    "html_to_otsl",
    "html_to_table",
    "is_complete",
    "normalize_html",
    "otsl_to_html",
    "otsl_to_table",
    "table_to_html",
    "table_to_otsl",
    "to_html",
]
