"""What an operator watches: `/metrics` in Prometheus' text format and `/health` for a load balancer, served by the
bot (embedded or front) and by every worker machine."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

logger = logging.getLogger(__name__)

# What each request ended with: "result" (the anonymized picture or the answer that it has no face), "busy",
# "unavailable", "apology" (the deadline passed) or "error" (the picture could not be processed).
REQUESTS = Counter(
    "photo_anon_requests_total",
    "Requests (a photo, file, album, video, GIF or video note) answered, by outcome.",
    ["outcome"],
)
REPLY_SECONDS = Histogram(
    "photo_anon_reply_seconds",
    "From an update's arrival to its answer.",
    buckets=(0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 12.5, 15, 20, 30),
)
VIDEO_SECONDS = Histogram(
    "photo_anon_video_seconds",
    "From a video's, GIF's or video note's arrival to its answer.",
    buckets=(5, 10, 20, 30, 60, 90, 120, 180, 240, 300, 450, 600),
)
QUEUE_DEPTH = Gauge("photo_anon_queue_depth", "Jobs admitted and not yet finished (all fronts, in distributed mode).")
WORKERS_ALIVE = Gauge("photo_anon_worker_processes", "Worker processes alive that take jobs.")
JOBS = Counter("photo_anon_jobs_total", "Jobs a worker machine finished, by outcome.", ["outcome"])

HealthCheck = Callable[[], Awaitable[bool]]


async def serve(host: str, port: int, healthy: HealthCheck) -> web.AppRunner:
    """Start a server of their own for /metrics and /health, on METRICS_HOST (a private address: they tell anyone
    how busy the bot is), never on the public webhook listener; the caller cleans the runner up."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        ok = await healthy()
        return web.json_response({"status": "ok" if ok else "unavailable"}, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    logger.info("metrics and health on http://%s:%d/metrics", host, port)
    return runner
