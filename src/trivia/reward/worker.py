"""The reward worker: an RQ worker that notices a dead colleague's job within seconds.

RQ's defaults suit long jobs: a worker killed mid-job leaves its job "started" until a
heartbeat expires (job monitoring interval + 60 s) and someone sweeps (every 10 minutes), so a
killed job re-runs after about 13 minutes. Reward jobs take seconds and a training step waits on
them. This worker

* sends heartbeats from a thread every `job_monitoring_interval_s` while a job runs, each valid
  for only `job_monitoring_interval_s + 2` seconds, so a dead worker's job expires in ~3 s;
* sweeps for expired jobs every `maintenance_interval_s` in a thread (one worker at a time, by a
  short Redis lock) — `cleanup()` re-queues them because every job is enqueued with `Retry`;
* runs jobs in its own process (no fork per job), keeping one QA client and event loop;
* serves `/metrics`, `/healthz` and `/readyz` on its own port.

"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from trivia.reward import context
from trivia.reward.enqueue import JOB_FUNCTION
from trivia.reward.keys import maintenance_lock_key
from trivia.reward.redis_client import connect
from trivia.settings import Settings

#: How often a worker that lost Redis checks whether it is back.
REDIS_POLL_S = 0.5

log = logging.getLogger(__name__)


class _FastRecovery:
    """Short heartbeats and a sweeping thread, mixed into an RQ worker class."""

    settings: Settings

    def get_heartbeat_ttl(self, job: Job) -> int:
        return self.job_monitoring_interval + 2  # type: ignore[attr-defined]

    def start_sweeping(self) -> threading.Event:
        """Sweep the queues for abandoned jobs until the returned event is set."""
        stop = threading.Event()
        thread = threading.Thread(target=self._sweep, args=(stop,), name="sweeper", daemon=True)
        thread.start()
        return stop

    def _sweep(self, stop: threading.Event) -> None:
        interval = self.settings.maintenance_interval_s
        connection: Redis = self.connection  # type: ignore[attr-defined]
        while not stop.wait(interval):
            for queue in self.queues:  # type: ignore[attr-defined]
                try:
                    if connection.set(
                        maintenance_lock_key(queue.name), 1, nx=True, ex=interval + 1
                    ):
                        StartedJobRegistry(queue=queue).cleanup()
                except RedisError as exc:
                    log.warning("sweep of %s failed: %s", queue.name, exc)
                except Exception:
                    log.exception("sweep of %s failed", queue.name)


class RewardWorker(_FastRecovery, SimpleWorker):
    """Runs reward jobs in its own process, one at a time, with fast recovery of dead ones."""

    # RQ doubles its wait for a lost Redis up to 60 s, so scoring resumed up to a minute after
    # Redis came back; here a lost Redis is polled every half second (after RQ's first 1 s).
    exponential_backoff_factor = 1.0
    max_connection_wait_time = REDIS_POLL_S

    def __init__(self, queues: Any, *, settings: Settings, **kwargs: Any) -> None:
        self.settings = settings
        kwargs.setdefault("serializer", JSONSerializer)
        kwargs.setdefault("job_monitoring_interval", settings.job_monitoring_interval_s)
        super().__init__(queues, **kwargs)

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            name = job.func_name
        except Exception as exc:  # not our JSON payload (a pickle, garbage)
            name = f"<unreadable: {type(exc).__name__}>"
        if name != JOB_FUNCTION:
            # RQ would import and call whatever the job names: refuse anything but scoring.
            log.error("refused job %s: it names %r, not %s", job.id, name, JOB_FUNCTION)
            self.handle_job_failure(
                job, queue, exc_string=f"refused: {name!r} is not {JOB_FUNCTION}"
            )
            return
        # The main thread runs the job, so a thread keeps its heartbeat fresh meanwhile.
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, stop), name="heartbeat", daemon=True)
        beat.start()
        try:
            super().execute_job(job, queue)
        finally:
            stop.set()
            beat.join()

    def _beat(self, job: Job, stop: threading.Event) -> None:
        while not stop.wait(self.job_monitoring_interval):
            try:
                if self.execution is not None:
                    self.maintain_heartbeats(job)
            except RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            except Exception:
                log.exception("heartbeat failed")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _health_app(probe: Redis) -> Any:
    metrics_app = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status":"ok"}']
        if path == "/readyz":
            try:
                probe.ping()
            except RedisError as exc:
                body = f'{{"status":"unavailable","reason":"redis: {type(exc).__name__}"}}'
                start_response("503 Service Unavailable", [("Content-Type", "application/json")])
                return [body.encode()]
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status":"ready"}']
        if path == "/metrics":
            return metrics_app(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"detail":"not found"}']

    return app


def serve_worker_metrics(host: str, port: int, probe: Redis) -> WSGIServer:
    """Serve /metrics, /healthz and /readyz (`probe` answers PING) on `port` from a thread."""
    server = make_server(
        host,
        port,
        _health_app(probe),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def wait_for_redis(connection: Redis, *, poll_s: float = REDIS_POLL_S) -> None:
    """Return once Redis answers PING, polling every `poll_s` (logged once while it is away)."""
    said = False
    while True:
        try:
            connection.ping()
            if said:
                log.warning("Redis is back")
            return
        except RedisError as exc:
            if not said:
                log.warning("Redis unreachable (%s); polling every %.1f s", exc, poll_s)
                said = True
            time.sleep(poll_s)


def _redis_answers(connection: Redis) -> bool:
    try:
        return bool(connection.ping())
    except RedisError:
        return False


def run_worker(settings: Settings, *, burst: bool = False) -> None:
    """Run one worker until it is stopped (SIGTERM/SIGINT: finish the job at hand, then exit).

    A Redis outage does not end the process: a worker that loses Redis mid-job (RQ raises) is
    replaced in this process by a new one as soon as Redis answers again, so scoring resumes
    within about `REDIS_POLL_S` of its return instead of after a restart with backoff.
    """
    # Redis replies are decoded by RQ itself; the connection stays binary.
    connection = connect(settings, socket_connect_timeout=5)
    queue = Queue(settings.queue_name, connection=connection, serializer=JSONSerializer)
    ctx = context.configure(settings)
    # The job's code now rather than at the first job: its metrics are on /metrics from the start.
    importlib.import_module(JOB_FUNCTION.rpartition(".")[0])
    metrics_server = None
    if settings.worker_metrics_port:
        probe = connect(settings, socket_connect_timeout=2, socket_timeout=2)
        metrics_server = serve_worker_metrics(settings.host, settings.worker_metrics_port, probe)
    try:
        while True:
            wait_for_redis(connection)
            worker = RewardWorker([queue], connection=connection, settings=settings)
            stop_sweeping = worker.start_sweeping()
            try:
                worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
            except RedisError as exc:  # raised from RQ's start or teardown while Redis is away
                log.warning("lost Redis (%s); resuming when it is back", exc)
                continue
            finally:
                stop_sweeping.set()
            if burst or worker._stop_requested or _redis_answers(connection):
                return  # stopped, or quit for a reason other than Redis: the supervisor decides
            log.warning("lost Redis while working; resuming when it is back")
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        ctx.close()
