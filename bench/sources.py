"""Sources: the time of a first sync and of an unchanged re-sync, for a local website of 1,000
pages served by Python's http.server in a process of its own (crawled from an index page,
INDEXFLOW_SOURCES_WEB_CONCURRENCY requests at once), twice: with its sitemap ignored (every re-sync
request conditional, answered 304) and read (its <lastmod> dates unchanged, so no page is asked for
again); and a bucket of 1,000 objects on localbucket (re-sync: the listing alone). The sync runs in
process on a Kafka and a state Redis of its own, publishing through the gateway's write path as the
sources service does; the pipeline's stages are not running, so the figures are the sync's own work
(list, fetch, publish and checkpoint), not indexing.

    .venv/bin/python -m bench.sources [--items 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.stacks import free_port
from deploy.probes import http_ready

WORDS = ("harbour tide current anchor buoy channel keel rudder sail mast hull deck chart compass beacon "
         "lighthouse reef shoal estuary delta").split()


def page_text(i: int, words: int = 300) -> str:
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(words)) + f" page {i}."


# http.server's files, as a web server serves them: connections kept alive (HTTP/1.1, without Nagle's
# delay: headers and body go out as two writes) and a listen backlog of 128, not socketserver's 5,
# whose dropped connections each cost a second's SYN retry once a crawler has more than a few
# requests in flight.
SITE_SERVER = """
import functools, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
class Server(ThreadingHTTPServer):
    request_queue_size = 128
class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
Server(("127.0.0.1", int(sys.argv[2])), functools.partial(Handler, directory=sys.argv[1])).serve_forever()
"""


@contextmanager
def static_site(root: Path, pages: int) -> Iterator[tuple[str, Path]]:
    """``pages`` HTML pages, an index linking them and a sitemap listing them all with a
    ``<lastmod>``, served by Python's http.server in a process of its own (Last-Modified, and 304
    to If-Modified-Since); its URL and request log."""
    (root / "p").mkdir(parents=True)
    for i in range(pages):
        (root / "p" / f"{i}.html").write_text(f"<html><head><title>Page {i}</title></head><body><p>{page_text(i)}"
                                              "</p></body></html>")
    links = "".join(f'<a href="/p/{i}.html">{i}</a> ' for i in range(pages))
    (root / "index.html").write_text(f"<html><head><title>Index</title></head><body>{links}</body></html>")
    port = free_port()
    entries = "".join(f"<url><loc>http://127.0.0.1:{port}{path}</loc><lastmod>2026-11-01</lastmod></url>"
                      for path in ["/", *(f"/p/{i}.html" for i in range(pages))])
    (root / "sitemap.xml").write_text('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns='
                                      f'"http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>')
    log = root.parent / "site-requests.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-c", SITE_SERVER, str(root), str(port)],
                                  stdout=subprocess.DEVNULL, stderr=out)
    try:
        deadline = time.monotonic() + 10
        while http_ready(f"http://127.0.0.1:{port}/") is not None:
            assert time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", log
    finally:
        server.terminate()
        server.wait()


def timed_run(store, publisher, source, kind) -> tuple[float, object]:
    """One run of the source, timed; the finished run."""
    from services.sources.sync import SyncRun

    run, _ = store.start_run(source, "manual")
    started = time.perf_counter()
    finished = SyncRun(store, publisher, source, kind, run, lambda: None, lambda: False).execute()
    return time.perf_counter() - started, finished


def report(name: str, first: tuple[float, object], again: tuple[float, object], extra: str = "") -> None:
    (first_s, first_run), (again_s, again_run) = first, again
    print(f"{name}: first sync {first_s:.2f}s ({first_run.created} created, {first_run.failed} failed); "
          f"unchanged re-sync {again_s:.3f}s ({again_run.unchanged} unchanged, "
          f"{again_run.created + again_run.updated} published); {first_s / again_s:.0f}x faster{extra}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=None,
                        help="the crawl's requests at once (default: INDEXFLOW_SOURCES_WEB_CONCURRENCY)")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    os.environ.update({
        "INDEXFLOW_STATE_DIR": str(state / "stack"), "INDEXFLOW_KAFKA_PORT": str(free_port()),
        "INDEXFLOW_REDIS_PORT": str(free_port()), "INDEXFLOW_CACHE_REDIS_PORT": str(free_port()),
        "INDEXFLOW_ELASTICSEARCH_PORT": str(free_port()), "INDEXFLOW_METRICS_PORT": "0",
        "INDEXFLOW_TOPIC_PREFIX": "bench.", "INDEXFLOW_KAFKA_STORAGE": "memory",
    })
    import httpx

    from deploy.stack import Stack
    from services.gateway.services import Services
    from services.gateway.settings import GatewaySettings
    from services.runtime.kafka import admin_client
    from services.runtime.redis_client import redis_client
    from services.runtime.settings import Settings
    from services.sources.definitions import S3Config, WebConfig, new_source
    from services.sources.publishing import ItemPublisher
    from services.sources.s3 import S3Source
    from services.sources.settings import SourcesSettings
    from services.sources.store import SourceStore
    from services.sources.web import WebSource
    from tests.support.buckets import ACCESS_KEY_ID, SECRET_ACCESS_KEY, local_bucket
    from topics import TOPICS, apply_topics

    settings = Settings()
    stack = Stack(settings)
    stack.components = [c for c in stack.components if c.name in ("kafka", "redis", "redis-cache")]
    stack.up()
    try:
        assert apply_topics(admin_client(settings), TOPICS, settings).ok
        sources_settings = SourcesSettings()
        store = SourceStore(redis_client(settings), settings.keys)
        services = Services(settings, GatewaySettings())
        publisher = ItemPublisher(services)
        dataset = services.catalog.create("bench", name="sources", indexing_technique="economy").id

        with static_site(state / "site", args.items) as (url, requests), httpx.Client(timeout=30) as http:
            for name, sitemap in (("sitemap ignored", False), ("sitemap read", True)):
                config = WebConfig(url=url + "/", max_depth=1, max_pages=args.items + 1,
                                   concurrency=args.concurrency, sitemap=sitemap)
                source = new_source("bench", dataset, "web", name, config, None)
                store.save(source, {})
                crawler = WebSource(config, http, sources_settings.user_agent, sources_settings.max_item_bytes,
                                    sources_settings.web_concurrency, sources_settings.max_crawl_delay_seconds)
                first = timed_run(store, publisher, source, crawler)
                mark = len(requests.read_text().splitlines())
                again = timed_run(store, publisher, source, crawler)
                statuses = Counter(line.split('"')[2].split()[0]
                                   for line in requests.read_text().splitlines()[mark:] if line.count('"') >= 2)
                report(f"web, {args.items + 1} pages, {name}", first, again,
                       f"; re-sync answered {dict(statuses)}")

        with local_bucket(state / "bucket", "bench") as (endpoint, s3):
            for i in range(args.items):
                s3.put_object(Bucket="bench", Key=f"docs/{i:05}.txt", Body=page_text(i).encode())
            config = S3Config(bucket="bench", prefix="docs/", endpoint_url=endpoint, access_key_id=ACCESS_KEY_ID,
                              secret_access_key=SECRET_ACCESS_KEY)
            source = new_source("bench", dataset, "s3", "bucket", config, None)
            store.save(source, config.secrets())
            bucket = S3Source(config, sources_settings.max_item_bytes, 30)
            report(f"s3, {args.items} objects", timed_run(store, publisher, source, bucket),
                   timed_run(store, publisher, source, bucket))
    finally:
        stack.down()


if __name__ == "__main__":
    main()
