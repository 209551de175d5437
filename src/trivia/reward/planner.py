"""Turn a reward request into the least work: validity, grouping by table, dedupe (pure).

Validity is decided here, before anything is enqueued, so an invalid completion never costs a
QA call. Valid items are grouped by a hash of their normalised HTML table: one job per unique
table carries the union of its items' questions (each asked once), the unique (question, known
answer) pairs to score, and the unique solutions to score TEDS against. `assemble.py` fans the
job results back out to the items.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from trivia.reward.api import RewardRequest
from trivia.tables import (
    GridTooLarge,
    detect_format,
    html_to_table,
    is_complete,
    otsl_to_table,
    table_to_html,
    to_html,
)

#: A known answer, or the tuple of its accepted aliases.
Gold = str | tuple[str, ...]


@dataclass
class TableJob:
    """The work for one unique table: every question asked about it in the request, once."""

    table_hash: str
    table: str
    questions: list[str] = field(default_factory=list)
    # (index into `questions`, known answer or its aliases): each pair is scored once.
    golds: list[tuple[int, Gold]] = field(default_factory=list)
    solutions: list[str] = field(default_factory=list)
    _question_index: dict[str, int] = field(default_factory=dict, repr=False)
    _gold_index: dict[tuple[int, Gold], int] = field(default_factory=dict, repr=False)
    _solution_index: dict[str, int] = field(default_factory=dict, repr=False)

    def add_pair(self, question: str, answer: str | Sequence[str]) -> int:
        """Register a (question, answer or aliases) pair; returns its index into `golds`."""
        q = self._question_index.get(question)
        if q is None:
            q = self._question_index[question] = len(self.questions)
            self.questions.append(question)
        key = (q, answer if isinstance(answer, str) else tuple(answer))
        g = self._gold_index.get(key)
        if g is None:
            g = self._gold_index[key] = len(self.golds)
            self.golds.append(key)
        return g

    def add_solution(self, solution: str) -> int:
        """Register a ground-truth table to score TEDS against; returns its index."""
        s = self._solution_index.get(solution)
        if s is None:
            s = self._solution_index[solution] = len(self.solutions)
            self.solutions.append(solution)
        return s


@dataclass(frozen=True)
class ItemPlan:
    """Where one request item's scores come from."""

    valid: bool
    # Why an invalid completion could not be read as a table, when that needs saying.
    error: str | None = None
    job: int | None = None
    golds: tuple[int, ...] = ()
    solution: int | None = None


@dataclass(frozen=True)
class Plan:
    """Jobs to run and, per request item, how to read its result from them."""

    jobs: list[TableJob]
    items: list[ItemPlan]
    want_qa: bool
    want_teds: bool

    @property
    def qa_calls_naive(self) -> int:
        """Answering calls without dedupe: one per valid item and question."""
        return sum(len(item.golds) for item in self.items if item.valid)

    @property
    def qa_calls_planned(self) -> int:
        """Answering calls after dedupe (before the answer cache)."""
        return sum(len(job.questions) for job in self.jobs)


def normalise_question(question: str) -> str:
    """The question as it is sent: whitespace runs collapsed (what the prompt does too)."""
    return " ".join(question.split())


def normalise_completion(completion: str) -> str | None:
    """The completion as an HTML table, or None when it is truncated, unparseable or empty.

    Raises `GridTooLarge` when its spans expand past `MAX_GRID_SLOTS`: answering from it would
    build that grid.
    """
    try:
        if not is_complete(completion):
            return None
        if detect_format(completion) == "otsl":
            # OTSL is read straight into a table (no second parse of the generated HTML).
            table = otsl_to_table(completion)
            table.check_grid()
            return table_to_html(table) if table.cells else None
        html = to_html(completion)
        parsed = html_to_table(html)
        if parsed is not None:
            parsed.check_grid()
    except GridTooLarge:
        raise
    except (ValueError, RecursionError):  # malformed output; a TypeError is a bug and propagates
        return None
    return html if parsed is not None and parsed.cells else None


def _normalised_or_error(completion: str) -> str | GridTooLarge | None:
    try:
        return normalise_completion(completion)
    except GridTooLarge as exc:
        return exc


def table_hash(html: str) -> str:
    """A stable key for a normalised table (dedupe and answer-cache key)."""
    return hashlib.sha256(html.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def plan(request: RewardRequest) -> Plan:
    """Decide validity of every item and the jobs that score the valid ones."""
    want_qa = "qa_f1" in request.metrics
    want_teds = "teds" in request.metrics
    jobs: list[TableJob] = []
    job_of_table: dict[str, int] = {}
    items: list[ItemPlan] = []
    normalised: dict[str, str | GridTooLarge | None] = {}  # a GRPO group repeats completions
    for item in request.items:
        if item.completion in normalised:
            html = normalised[item.completion]
        else:
            html = normalised[item.completion] = _normalised_or_error(item.completion)
        if isinstance(html, GridTooLarge):
            items.append(ItemPlan(valid=False, error=str(html)))
            continue
        if html is None:
            items.append(ItemPlan(valid=False))
            continue
        pairs = item.qa_pairs if want_qa else []
        solution = item.solution if want_teds else None
        if not pairs and solution is None:
            items.append(ItemPlan(valid=True))
            continue
        key = table_hash(html)
        index = job_of_table.get(key)
        if index is None:
            index = job_of_table[key] = len(jobs)
            jobs.append(TableJob(table_hash=key, table=html))
        job = jobs[index]
        golds = tuple(job.add_pair(normalise_question(p.question), p.answer) for p in pairs)
        solution_index = job.add_solution(solution) if solution is not None else None
        items.append(ItemPlan(valid=True, job=index, golds=golds, solution=solution_index))
    return Plan(jobs=jobs, items=items, want_qa=want_qa, want_teds=want_teds)
