"""The master's metrics process (rx-metrics, started only when `metrics_port` is set): `GET /metrics` on
`metrics_interface:metrics_port`, over tornado.  No authentication: it binds 127.0.0.1 unless told
otherwise, and serves nothing but the exposition (every other path is a 404; request bodies are refused)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rx.config import MasterConfig
from rx.master.metrics.exposition import CONTENT_TYPE, MetricsSource

log = logging.getLogger(__name__)

IDLE_SECONDS = 30.0
"""A connection that sends nothing for this long is closed (a scraper reconnects)."""
MAX_HEADER_BYTES = 16 * 1024


def application(source: MetricsSource) -> Any:
    import tornado.web

    class Metrics(tornado.web.RequestHandler):
        async def get(self) -> None:
            self.set_header("Content-Type", CONTENT_TYPE)
            self.write(await source.render())

    return tornado.web.Application([(r"/metrics", Metrics)], compress_response=True,
                                   log_function=lambda handler: log.debug("%s %s %d", handler.request.method,
                                                                          handler.request.uri, handler.get_status()))


async def run(cfg: MasterConfig) -> None:
    from tornado.httpserver import HTTPServer
    source = MetricsSource(cfg)
    server = HTTPServer(application(source), idle_connection_timeout=IDLE_SECONDS, body_timeout=IDLE_SECONDS,
                        max_body_size=0, max_header_size=MAX_HEADER_BYTES)
    server.listen(cfg.metrics_port, address=cfg.metrics_interface)
    log.info("metrics at http://%s:%d/metrics", cfg.metrics_interface, cfg.metrics_port)
    try:
        await asyncio.Event().wait()
    finally:
        server.stop()
        source.close()


def main(cfg: MasterConfig) -> None:
    asyncio.run(run(cfg))
