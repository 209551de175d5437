"""The reward service: `POST /v1/rewards` → one RQ job per unique table → QA-F1 and TEDS.

Where each concept lives (data moves down this list):

    api.py           request and response models (the versioned JSON contract)
    app.py           the gateway app (`create_app`), with auth.py (bearer token) and
                     limits.py (body size), routes/ (rewards, health, inspect)
    planner.py       validity, grouping by normalised table, dedupe of (table, question)
    enqueue.py       job payloads onto the RQ queue (with `Retry`, TTLs)
    jobs.py          the job a worker runs: answer (cache first), score F1 and TEDS, publish
    cache.py         the answer cache (model, prompt version, table, question)
    results.py       the gateway awaiting published results, up to the deadline
    assemble.py      results fanned back out to the request's items
    worker.py        the worker: fast recovery of a dead worker's job, metrics port
    context.py       what a worker keeps between jobs (event loop, QA client)
    redis_server.py  the local valkey-server command line and readiness wait
    stack.py         `trivia stack up`: all of it on one machine, supervised
    metrics.py       every `trivia_*` Prometheus metric of the service
    keys.py          the Redis key names the service writes
    inspector/       `/inspect`: scored requests kept in Redis, shown as pages

Nothing is imported here, so that the gateway never loads the worker's dependencies.
"""
