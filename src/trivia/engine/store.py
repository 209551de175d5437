"""Resumable output: an append-only JSONL file of records, each named by a `key`.

A run writes one record per finished unit of work and skips the keys already in its output, so a
re-run does only what is missing and an interrupted run loses nothing it wrote. Each record is
written to the file (flushed to the operating system) as it is finished, so a killed process
loses nothing written; the file is fsync'ed at most `sync_every_s` (1 s) after a write and on
close, so a machine that loses power loses at most that last second (fsync per record would
bound a run to one record per disk flush: a few dozen a second on a cloud disk). A process
killed mid-write leaves at most a torn last line, which the next open drops (the file is
truncated to its last whole record). Two processes
writing one file would interleave records, so a store holds an exclusive lock on its file.

Opening reads the file line by line and keeps only an index (key → byte offset), so a store of
50,000 large records costs a few megabytes; `get` reads one record back from its offset.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self


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

    def __init__(self, path: Path, *, sync_every_s: float = 1.0) -> None:
        """Open (or create) `path`, drop a torn last line, and learn the keys already written.

        `sync_every_s`: the longest a written record waits for fsync (0: fsync every record).
        Raises ValueError for a line before the last that is not a JSON object with a string
        `key` (the file is not this store's), and `StoreLocked` while another store has it open.
        """
        self.path = Path(path)
        self.sync_every_s = sync_every_s
        self._synced_at = time.monotonic()
        self._unsynced = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+b")  # noqa: SIM115 - held open for the store's life
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise StoreLocked(f"{self.path} is being written by another process") from None
        try:
            self._keys = self._recover()
            self._end = self._file.seek(0, os.SEEK_END)
        except BaseException:
            self.close()
            raise
        self.dropped_torn_line = self._dropped

    def _recover(self) -> dict[str, int]:
        self._file.seek(0, os.SEEK_END)
        size = self._file.tell()
        self._file.seek(0)
        keys: dict[str, int] = {}
        good_end = 0
        self._dropped = False
        number = 0
        while True:
            line = self._file.readline()
            if not line:
                break
            number += 1
            terminated = line.endswith(b"\n")
            last = self._file.tell() >= size
            key = _key_of(line)
            if key is None:
                if last:
                    # The final record is torn: unterminated, or terminated but unreadable
                    # (a kill between the write and the newline's fsync).
                    self._dropped = True
                    break
                raise ValueError(f"{self.path}:{number}: not a record with a key")
            keys.setdefault(key, good_end)
            if not terminated:  # readable but not newline-terminated: keep it, finish the line
                self._file.write(b"\n")
                self._sync()
                return keys
            good_end += len(line)
        if good_end < size:
            self._file.truncate(good_end)
            self._sync()
        return keys

    def done(self, key: str) -> bool:
        """Whether a record with `key` is already written."""
        return key in self._keys

    def get(self, key: str) -> dict[str, Any] | None:
        """The record written under `key` (read from the file), or None."""
        offset = self._keys.get(key)
        if offset is None:
            return None
        with open(self.path, "rb") as reader:
            reader.seek(offset)
            return json.loads(reader.readline())

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
        data = line.encode() + b"\n"
        self._file.write(data)  # "a" mode: appended whatever the position
        self._file.flush()
        self._keys[key] = self._end
        self._end += len(data)
        self._unsynced = True
        if time.monotonic() - self._synced_at >= self.sync_every_s:
            self._sync()

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record written so far, in file order."""
        with open(self.path, "rb") as reader:
            for line in reader:
                if line.strip():
                    yield json.loads(line)

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._synced_at = time.monotonic()
        self._unsynced = False

    def close(self) -> None:
        """Fsync what is not yet, release the file (and its lock); safe to call twice."""
        if not self._file.closed:
            if self._unsynced:
                self._sync()
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
