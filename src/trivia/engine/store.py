"""Resumable output: an append-only JSONL file of records, each named by a `key`.

A run writes one record per finished unit of work and skips the keys already in its output, so a
re-run does only what is missing and an interrupted run loses nothing it wrote. Each record is
flushed and fsync'ed as it is written; a process killed mid-write leaves at most a torn last
line, which the next open drops (the file is truncated to its last whole record). Two processes
writing one file would interleave records, so a store holds an exclusive lock on its file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["ResultStore", "StoreLocked", "work_key"]


def work_key(*parts: object) -> str:
    """SHA-256 (hex) of `parts` in order: the image key and every setting that changes a result.

    Parts are compared as JSON, so `("ab", "c")` and `("a", "bc")` differ, and so do `1` and
    `1.0`: pass settings in one canonical form.
    """
    encoded = json.dumps(list(parts), ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


class StoreLocked(RuntimeError):
    """Another process is writing the same output file."""


class ResultStore:
    """Records by key in a JSONL file that survives being killed; see the module docstring."""

    def __init__(self, path: Path) -> None:
        """Open (or create) `path`, drop a torn last line, and learn the keys already written.

        Raises ValueError for a line before the last that is not a JSON object with a string
        `key` (the file is not this store's), and `StoreLocked` while another store has it open.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+b")  # noqa: SIM115 - held open for the store's life
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise StoreLocked(f"{self.path} is being written by another process") from None
        try:
            self._keys = self._recover()
        except BaseException:
            self.close()
            raise
        self.dropped_torn_line = self._dropped

    def _recover(self) -> set[str]:
        self._file.seek(0)
        data = self._file.read()
        keys: set[str] = set()
        good_end = 0
        self._dropped = False
        lines = data.split(b"\n")
        for number, line in enumerate(lines, start=1):
            last = number == len(lines)
            if last and not line:
                break  # the file ends with a newline: nothing after it
            key = _key_of(line)
            if key is None:
                if last or (number == len(lines) - 1 and not lines[-1]):
                    # The final record is torn: unterminated, or terminated but unreadable
                    # (a kill between the write and the newline's fsync).
                    self._dropped = True
                    break
                raise ValueError(f"{self.path}:{number}: not a record with a key")
            if last:  # readable but not newline-terminated: keep it, finish the line
                keys.add(key)
                self._file.write(b"\n")
                self._sync()
                return keys
            keys.add(key)
            good_end += len(line) + 1
        if good_end < len(data):
            self._file.truncate(good_end)
            self._sync()
        return keys

    def done(self, key: str) -> bool:
        """Whether a record with `key` is already written."""
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def write(self, record: dict[str, Any]) -> None:
        """Append `record` (which must have a string `key`) durably; a written key is skipped."""
        key = record.get("key")
        if not isinstance(key, str) or not key:
            raise ValueError("a record needs a non-empty string 'key'")
        if key in self._keys:
            return
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        self._file.write(line.encode() + b"\n")
        self._sync()
        self._keys.add(key)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record written so far, in file order."""
        with open(self.path, "rb") as reader:
            for line in reader:
                if line.strip():
                    yield json.loads(line)

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Release the file (and its lock); safe to call twice."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _key_of(line: bytes) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if isinstance(record, dict) and isinstance(record.get("key"), str) and record["key"]:
        return record["key"]
    return None
