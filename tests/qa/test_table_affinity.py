"""Table affinity across QA replicas: one replica per table, failures move only that share.

Real HTTP to real stub servers; the replicas are stubs on 127.0.0.1-4, and "a name with several
addresses" is the resolver answering what a headless Service's DNS would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest
from tests.support.openai_stub import StubServer, openai_stub, table_key

from trivia.llm import discovery
from trivia.ports import free_port
from trivia.qa.client import QAClient
from trivia.qa.prompts import build_messages

ANSWER = "<answer>1</answer>"
# Backoff kept short; no replica saturates unless a test wants it to: every call goes to its
# table's owner, and what moves is what a change of owners moves.
FAST = {
    "backoff_base_s": 0.01,
    "backoff_max_s": 0.05,
    "max_concurrency_per_endpoint": 512,
}
TABLES = [
    f"<table><tr><td>item</td><td>value</td></tr><tr><td>row {i}</td><td>{i * 7}</td></tr></table>"
    for i in range(48)
]
KEYS = {table_key(build_messages(t, "q")): t for t in TABLES}


@contextlib.contextmanager
def replicas(count: int, **config: object) -> Iterator[list[StubServer]]:
    """`count` stubs on 127.0.0.1, 127.0.0.2, … sharing one port, as pods behind a Service."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(
                openai_stub(host=f"127.0.0.{i + 1}", port=port, answer=ANSWER, **config)
            )
            for i in range(count)
        ]


def served(stubs: list[StubServer]) -> dict[str, Counter[int]]:
    """For each table, how many of its calls each replica answered."""
    tables: dict[str, Counter[int]] = defaultdict(Counter)
    for index, stub in enumerate(stubs):
        for record in stub.records():
            if record["status"] == 200:
                tables[KEYS[record["table_key"]]][index] += 1
    return tables


async def ask_all(client: QAClient, tag: str, questions: int = 5) -> list[str | Exception]:
    asked = [
        client.answer_many(table, [f"{tag} q{i} of {n}" for i in range(questions)])
        for n, table in enumerate(TABLES)
    ]
    return [answer for answers in await asyncio.gather(*asked) for answer in answers]


async def calls_reach(stubs: list[StubServer], total: int) -> None:
    """Wait until the stubs have received `total` calls between them."""
    while True:
        counts = [(await asyncio.to_thread(stub.stats))["calls"] for stub in stubs]
        if sum(counts) >= total:
            return
        await asyncio.sleep(0.005)


def test_every_question_about_a_table_goes_to_one_replica_and_all_replicas_work():
    with replicas(4) as stubs:

        async def go() -> list[str | Exception]:
            async with QAClient([s.url for s in stubs], model="m", **FAST) as client:
                return await ask_all(client, "a")

        assert asyncio.run(go()) == [ANSWER] * len(TABLES) * 5
        tables = served(stubs)
        assert all(len(counter) == 1 for counter in tables.values())
        per_replica = Counter(next(iter(c)) for c in tables.values())
        assert set(per_replica) == {0, 1, 2, 3}


def test_least_loaded_routing_scatters_a_tables_questions():
    with replicas(4, latency_s=0.01) as stubs:

        async def go() -> list[str | Exception]:
            urls = [s.url for s in stubs]
            async with QAClient(urls, model="m", table_affinity=False, **FAST) as client:
                return await ask_all(client, "a")

        assert asyncio.run(go()) == [ANSWER] * len(TABLES) * 5
        assert sum(len(counter) > 1 for counter in served(stubs).values()) > len(TABLES) / 2


def test_ejecting_and_readding_a_replica_mid_run_loses_no_answer_and_moves_only_its_tables():
    with replicas(4, latency_s=0.005) as stubs:
        bad = stubs[1]
        per_round = len(TABLES) * 5

        async def go() -> tuple[list[str | Exception], dict[str, Counter[int]]]:
            async with QAClient(
                [s.url for s in stubs],
                model="m",
                eject_after_failures=1,
                eject_for_s=0.0,  # probed again at once: re-added by its first success
                max_retries=6,
                **FAST,
            ) as client:
                answers = await ask_all(client, "before")
                before = served(stubs)
                # Mid-run: the replica starts failing every call, then recovers.
                run = asyncio.ensure_future(ask_all(client, "during"))
                await calls_reach(stubs, per_round + per_round // 4)
                await asyncio.to_thread(bad.configure, failure="503", retry_after_s=None)
                await calls_reach(stubs, 2 * per_round)
                await asyncio.to_thread(bad.configure, failure="none")
                answers += await run
                for stub in stubs:
                    await asyncio.to_thread(stub.reset)
                answers += await ask_all(client, "after")
                return answers, before

        answers, before = asyncio.run(go())
        assert answers == [ANSWER] * 3 * per_round  # not one answer lost
        owner = {table: next(iter(counter)) for table, counter in before.items()}
        after = served(stubs)
        # Re-added: every table is back on its replica, the failed one's included.
        assert {table: next(iter(c)) for table, c in after.items()} == owner
        assert all(len(counter) == 1 for counter in after.values())
        assert 1 in owner.values()


def test_a_failing_replicas_tables_move_and_no_other_table_does():
    with replicas(4, latency_s=0.002) as stubs:
        bad = stubs[2]

        async def go() -> tuple[list[str | Exception], dict[str, Counter[int]]]:
            urls = [s.url for s in stubs]
            async with QAClient(urls, model="m", eject_after_failures=1, **FAST) as client:
                answers = await ask_all(client, "before")
                before = served(stubs)
                for stub in stubs:
                    await asyncio.to_thread(stub.reset)
                await asyncio.to_thread(bad.configure, failure="503", retry_after_s=None)
                answers += await ask_all(client, "during")
                return answers, before

        answers, before = asyncio.run(go())
        assert answers == [ANSWER] * 2 * len(TABLES) * 5
        owner = {table: next(iter(counter)) for table, counter in before.items()}
        during = served(stubs)
        for table, counter in during.items():
            if owner[table] != 2:
                assert counter == Counter({owner[table]: 5}), table
            else:
                assert 2 not in counter  # answered elsewhere
        moved = [during[t] for t in TABLES if owner[t] == 2]
        # The failed replica's tables spread over the others, each whole on one replica.
        assert len({next(iter(c)) for c in moved}) > 1 and all(len(c) == 1 for c in moved)


def test_one_name_with_several_addresses_is_one_endpoint_per_replica(monkeypatch):
    with replicas(4) as stubs:
        port = int(stubs[0].url.rsplit(":", 1)[1])
        addresses = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]

        async def resolve(host: str, _port: int) -> list[str]:
            assert host == "qa-replicas.test"
            return list(addresses)

        monkeypatch.setattr(discovery, "_addresses", resolve)

        async def go() -> list[set[str]]:
            async with QAClient(
                f"http://qa-replicas.test:{port}/v1", model="m", resolve_every_s=1e-6, **FAST
            ) as client:
                await ask_all(client, "three")
                seen = [{s.url for s in client.stats()}]
                addresses.append("127.0.0.4")  # a replica comes up
                while len(client.stats()) < 4:
                    await client.answer(TABLES[0], "tick")
                seen.append({s.url for s in client.stats()})
                for stub in stubs:
                    await asyncio.to_thread(stub.reset)
                await ask_all(client, "four")
                return seen

        seen = asyncio.run(go())
        assert seen[0] == {f"http://127.0.0.{i}:{port}" for i in (1, 2, 3)}
        assert seen[1] == {f"http://127.0.0.{i}:{port}" for i in (1, 2, 3, 4)}
        tables = served(stubs)
        assert all(len(counter) == 1 for counter in tables.values())
        assert {next(iter(c)) for c in tables.values()} == {0, 1, 2, 3}


def test_a_saturated_owner_sends_the_overflow_to_the_least_loaded_replica():
    with replicas(4, latency_s=0.02) as stubs:

        async def go() -> list[str | Exception]:
            urls = [s.url for s in stubs]
            options = {**FAST, "max_concurrency_per_endpoint": 4}  # saturated at 4
            async with QAClient(urls, model="m", **options) as client:
                return await client.answer_many(TABLES[0], [f"q{i}" for i in range(40)])

        assert asyncio.run(go()) == [ANSWER] * 40
        (counter,) = served(stubs).values()
        _, most = counter.most_common(1)[0]
        assert len(counter) > 1 and most < 40  # the overflow went elsewhere...
        assert most == max(counter.values())  # ...while the owner served the most


@pytest.mark.parametrize("resolve_every_s", [-1.0])
def test_a_negative_resolve_period_is_refused(resolve_every_s: float):
    with pytest.raises(ValueError):
        QAClient("http://qa:8001", resolve_every_s=resolve_every_s)
