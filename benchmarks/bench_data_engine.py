"""The data engine at 50,000 images: `trivia data select` and `trivia data qa` in bounded memory.

Writes 50,000 synthetic `trivia data sample` records of realistic size (K = 4 recognitions of a
20 × 6 table each, the pairwise TEDS, every setting: about 7.7 kB a line), then runs, each in its
own process so its peak RSS is its own (`os.wait4`):

- baseline: what the commands did before, reading every record into a list;
- `trivia data select --n 10000` over the file (a fifth of the records);
- `trivia data qa` over all 50,000 records (it reads sample records as they are) against the
  stub VLM in a process of its own (one generation round per image whose reply proposes
  nothing, so the figure is the engine's own cost: reading, keying, grounding the consensus
  recognition, resuming, one call, writing a durable record per image; its progress bar shows
  on stderr).

Prints records/s, peak RSS and the machine's mean load average while each command ran (the
rates are CPU-bound: a busy machine lowers them), and the ratio of the peak RSS to the baseline
measured in the same run; the target is a peak RSS of at most 300 MB per command.
`BENCH_DATA_RECORDS` sets the record count (default 50,000; `qa` takes about twelve minutes of
it on two busy cores).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table as RichTable

RECORDS = int(os.environ.get("BENCH_DATA_RECORDS", "50000"))
SELECT_N = RECORDS // 5
TARGET_MB = 300
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _table(rng: random.Random) -> str:
    header = "".join(f"<fcel>Column {c}" for c in range(6)) + "<nl>\n"
    rows = "".join(
        f"<fcel>Row label {r}"
        + "".join(f"<fcel>{rng.uniform(0, 1000):.2f}" for _ in range(5))
        + "<nl>\n"
        for r in range(19)
    )
    return header + rows


def _write_samples(path: Path, image: Path) -> None:
    rng = random.Random(0)
    tables = [_table(rng) for _ in range(64)]
    sampling = {
        "temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0,
        "repetition_penalty": 1.0, "seed": None, "max_tokens": 4096,
    }  # fmt: skip
    with path.open("w", encoding="utf-8") as out:
        for i in range(RECORDS):
            outputs = [
                {"text": rng.choice(tables), "finish_reason": "stop", "valid": True, "reason": None}
                for _ in range(4)
            ]
            teds = [[1.0 if a == b else round(rng.random(), 6) for b in range(4)] for a in range(4)]
            record = {
                "key": f"{i:064x}",
                "image": str(image),
                "image_key": f"{i + 10**9:064x}",
                "model": "bench-vlm",
                "model_fingerprint": {"model": "bench-vlm", "cards": [], "revision": None},
                "prompt_version": 1,
                "format": "otsl",
                "k": 4,
                "sampling": sampling,
                "seeds": [None] * 4,
                "invalid_rule": "zero",
                "max_pixels": 3136,
                "min_pixels": 784,
                "outputs": outputs,
                "teds": teds,
                "consistency": rng.random(),
                "consensus": 0,
                "n_valid": 4,
                "seconds": 1.0,
            }
            out.write(json.dumps(record) + "\n")


def _run(command: list[str], **kwargs: object) -> tuple[float, float, int, float]:
    """(seconds, peak RSS in MB, exit status, mean 1-minute load average) of a child process."""
    loads = [os.getloadavg()[0]]
    done = threading.Event()

    def sample_load() -> None:
        while not done.wait(5.0):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample_load, daemon=True)
    sampler.start()
    started = time.perf_counter()
    process = subprocess.Popen(command, **kwargs)  # type: ignore[call-overload]
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    loads.append(os.getloadavg()[0])
    return seconds, usage.ru_maxrss / 1024, process.returncode, sum(loads) / len(loads)


_LOAD_ALL = (
    "import json, sys\n"
    "records = [json.loads(line) for line in open(sys.argv[1], encoding='utf-8')]\n"
    "print(len(records))\n"
)

_STUB = (
    "import sys, threading\n"
    "from tests.support.vlm_stub import vlm_stub\n"
    "with vlm_stub(lambda request: '[]', port=int(sys.argv[1])) as stub:\n"
    "    print(stub.url, flush=True)\n"
    "    threading.Event().wait()\n"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    console = Console(width=max(Console().width, 120))
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    }
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        image = work / "table.png"
        Image.new("RGB", (56, 28), "white").save(image)
        samples, selected = work / "samples.jsonl", work / "selected.jsonl"
        started = time.perf_counter()
        _write_samples(samples, image)
        size = samples.stat().st_size
        console.print(
            f"{RECORDS:,} sample records, {size / 2**20:,.0f} MB ({size / RECORDS / 1000:.1f} kB "
            f"a record), written in {time.perf_counter() - started:.1f} s"
        )
        rows = []
        console.print("baseline: reading every record into a list …")
        base = _run([sys.executable, "-c", _LOAD_ALL, str(samples)], **quiet)
        select_cmd = [
            str(BIN / "trivia"), "data", "select", str(samples), "--n", str(SELECT_N),
            "--out", str(selected),
        ]  # fmt: skip
        console.print(f"trivia data select --n {SELECT_N:,} …")
        rows.append(("select", RECORDS, *_run(select_cmd, **quiet)))
        port = _free_port()
        stub = subprocess.Popen(
            [sys.executable, "-c", _STUB, str(port)], stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            assert stub.stdout is not None
            url = stub.stdout.readline().strip()
            qa_cmd = [
                str(BIN / "trivia"), "data", "qa", "--generator-url", url,
                "--verifier-url", url, "--in", str(samples), "--out", str(work / "d.jsonl"),
                "--rounds", "1", "--per-image", "1", "--candidates-per-round", "1",
                "--min-pixels", "784", "--max-pixels", "3136", "--concurrency", "32",
                "--workers", "64",
            ]  # fmt: skip
            console.print(f"trivia data qa over {RECORDS:,} records (progress on stderr) …")
            rows.append(("qa", RECORDS, *_run(qa_cmd, stdout=subprocess.DEVNULL, env=env)))
        finally:
            stub.terminate()
            stub.wait()
    table = RichTable(title="data engine at scale (peak RSS per command)")
    for column in ("command", "records", "seconds", "records/s", "peak RSS MB",
                   "baseline RSS MB", "ratio", "load avg", f"≤ {TARGET_MB} MB"):  # fmt: skip
        table.add_column(column, justify="right")
    for name, count, seconds, rss, status, load in rows:
        verdict = "yes" if rss <= TARGET_MB and status == 0 else "NO"
        table.add_row(
            name,
            f"{count:,}",
            f"{seconds:.1f}",
            f"{count / seconds:,.0f}",
            f"{rss:.0f}",
            f"{base[1]:.0f}",
            f"{rss / base[1]:.2f}",
            f"{load:.1f}",
            verdict if status == 0 else f"NO (exit {status})",
        )
    console.print(table)
    console.print(
        f"baseline: a process that reads every record into a list, as select and qa did before "
        f"({base[0]:.1f} s); {size / RECORDS / 1000:.1f} kB a record; load avg: the mean "
        f"1-minute load average while the command ran, on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
