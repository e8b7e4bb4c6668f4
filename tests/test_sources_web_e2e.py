"""A web source crawls a site the test serves on loopback: within the site, depth and page bounds,
include/exclude patterns, robots.txt and the sitemap honoured; an unchanged page costs one 304 and
no model call; an edited page is an update, a page gone a delete, a new one a creation; pages are
read by the same extractor as uploads."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.runtime.settings import Settings
from tests.support.sources import (
    add_source, create_dataset, eventually, found, killed_and_resumed, settled_documents, sync,
)
from tests.support.website import Website, serve
from tests.test_pipeline_e2e import embedding_calls

CRAWLED = ("/", "/a", "/a/deep", "/b", "/orphan")


@pytest.fixture
def http(pipeline: Settings) -> httpx.Client:
    with httpx.Client(base_url=pipeline.gateway_url, headers={"X-Tenant-Id": f"web-{uuid.uuid4().hex[:8]}"},
                      timeout=60) as client:
        yield client


@pytest.fixture
def site() -> Website:
    with serve(Website()) as site:
        site.put("/robots.txt", f"User-agent: *\nDisallow: /private/\nSitemap: {site.url}/sitemap.xml\n", "none",
                 "text/plain")
        site.html("/", "Lighthouses", "Lighthouse keepers trimmed the lamp wicks every evening.",
                  ("/a", "/b#section", "/private/secret", "/skip/me", "http://localhost:1/elsewhere"))
        site.html("/a", "Tides", "Spring tides follow the new and the full moon.", ("/a/deep",))
        site.html("/a/deep", "Currents", "Rip currents pull swimmers away from the beach.", ("/a/deep/deeper",))
        site.html("/a/deep/deeper", "Too deep", "Nobody should crawl this far.")
        site.html("/b", "Buoys", "Red buoys mark the port side of the channel.", validator="modified")
        site.html("/private/secret", "Secret", "Robots keep out.")
        site.html("/skip/me", "Skipped", "Excluded by pattern.")
        site.html("/orphan", "Orphan", "Only the sitemap knows the albatross page.")
        site.sitemap("/orphan")
        yield site


def test_a_web_source_crawls_the_site_and_syncs_its_changes_with_conditional_requests(
        pipeline: Settings, http: httpx.Client, site: Website):
    dataset = create_dataset(http, "web sync")
    source = add_source(http, dataset, "web", {"url": site.url + "/", "max_depth": 2, "exclude": ["/skip/"]})

    first = sync(http, dataset, source["id"])
    assert (first["status"], first["listed"], first["created"], first["failed"]) == ("completed", 5, 5, 0), first
    for never in ("/private/secret", "/skip/me", "/a/deep/deeper"):
        assert not site.statuses(never), f"{never} was fetched"
    states = settled_documents(http, dataset, 5)
    assert {s["status"] for s in states.values()} == {"completed"}
    ids = {s["name"]: i for i, s in states.items()}
    assert set(ids) == {"Lighthouses", "Tides", "Currents", "Buoys", "Orphan"}
    assert eventually(lambda: found(http, dataset, "lamp wicks keepers") == {ids["Lighthouses"]})

    calls = embedding_calls(pipeline)
    site.requests.clear()
    again = sync(http, dataset, source["id"])
    assert (again["created"], again["updated"], again["unchanged"], again["deleted"]) == (0, 0, 5, 0)
    assert {path: site.statuses(path) for path in CRAWLED} == {path: [304] for path in CRAWLED}
    assert embedding_calls(pipeline) == calls

    site.html("/b", "Buoys", "Green buoys mark the starboard side of the channel.", validator="modified")
    del site.pages["/orphan"]
    site.html("/new", "Kelp", "Kelp forests shelter sea otters from storms.")
    site.sitemap("/new")
    synced = sync(http, dataset, source["id"])
    assert (synced["created"], synced["updated"], synced["unchanged"], synced["deleted"]) == (1, 1, 3, 1), synced
    states = eventually(lambda: (s := settled_documents(http, dataset, 6))[ids["Orphan"]]["status"] == "deleted"
                        and s)
    kelp = next(i for i, s in states.items() if s["name"] == "Kelp")
    assert eventually(lambda: found(http, dataset, "kelp otters") == {kelp})
    assert eventually(lambda: found(http, dataset, "green starboard") == {ids["Buoys"]})
    assert not found(http, dataset, "albatross sitemap")
    detail = http.get(f"/v1/datasets/{dataset}/documents/{kelp}").json()
    assert {m["name"]: m["value"] for m in detail["doc_metadata"]} == {
        "source_id": source["id"], "source_url": f"{site.url}/new"}


def test_a_crawl_keeps_to_its_page_bound_and_include_patterns(pipeline: Settings, http: httpx.Client, site: Website):
    dataset = create_dataset(http, "web bounds", indexing_technique="economy")
    bounded = add_source(http, dataset, "web", {"url": site.url + "/", "max_pages": 2})
    assert sync(http, dataset, bounded["id"])["listed"] == 2
    included = add_source(http, dataset, "web", {"url": site.url + "/", "include": ["/a"], "sitemap": False,
                                                 "max_depth": 5})
    site.requests.clear()
    run = sync(http, dataset, included["id"])
    assert (run["listed"], run["created"]) == (4, 4), run  # the start page, /a, /a/deep, /a/deep/deeper
    assert {path for path, _ in site.requests} == {"/robots.txt", "/", "/a", "/a/deep", "/a/deep/deeper"}


def test_a_crawl_killed_midway_resumes_and_ends_with_the_same_documents(pipeline: Settings, http: httpx.Client):
    with serve(Website()) as site:
        pages = {f"/p/{i}": f"Heron {i}" for i in range(150)}
        for i, (path, title) in enumerate(pages.items()):
            site.html(path, title, f"The {i}th heron of the marsh waded at dawn.")
        site.html("/", "Marsh", "Herons of the marsh.", tuple(pages))
        dataset = create_dataset(http, "killed crawl", indexing_technique="economy")
        source = add_source(http, dataset, "web", {"url": site.url + "/", "max_depth": 1, "max_pages": 200})
        killed_and_resumed(http, dataset, source["id"], pipeline.state_dir,
                           {site.url + "/": "Marsh", **{site.url + path: title for path, title in pages.items()}})


def test_a_page_whose_sitemap_lastmod_is_unchanged_is_not_asked_for_again(pipeline: Settings, http: httpx.Client):
    with serve(Website()) as site:
        site.html("/", "Harbour", "The harbour master logs every ship.", ("/quay", "/pier"))
        site.html("/quay", "Quay", "Fishing boats unload at the quay.", ("/quay/crane",))
        site.html("/quay/crane", "Crane", "A crane lifts the nets ashore.")
        site.html("/pier", "Pier", "Anglers line the pier at dusk.")
        lastmods = {"/": "2026-11-01", "/quay": "2026-11-02T08:00:00+00:00", "/pier": "2026-11-03"}
        site.sitemap("/", "/quay", "/pier", lastmods=lastmods)
        dataset = create_dataset(http, "web lastmod", indexing_technique="economy")
        source = add_source(http, dataset, "web", {"url": site.url + "/", "max_depth": 2})
        assert sync(http, dataset, source["id"])["created"] == 4

        site.requests.clear()
        site.html("/pier", "Pier", "Gulls steal bait on the pier.")
        site.sitemap("/", "/quay", "/pier", lastmods={**lastmods, "/pier": "2026-12-01"})
        run = sync(http, dataset, source["id"])
        assert (run["created"], run["updated"], run["unchanged"], run["deleted"]) == (0, 1, 3, 0), run
        # / and /quay not asked for; /quay/crane (no date in the sitemap) still found by /quay's links
        # as kept, and asked for conditionally; /pier's date moved, so it is read.
        assert sorted(site.requests) == [("/pier", 200), ("/quay/crane", 304), ("/robots.txt", 404),
                                         ("/sitemap.xml", 200)]


def test_a_robots_crawl_delay_makes_the_crawl_sequential_and_spaced(pipeline: Settings, http: httpx.Client):
    with serve(Website()) as site:
        site.put("/robots.txt", "User-agent: *\nCrawl-delay: 1\n", "none", "text/plain")
        site.html("/", "Dunes", "Marram grass holds the dunes together.", ("/1", "/2", "/3"))
        for i in range(1, 4):
            site.html(f"/{i}", f"Dune {i}", f"Dune number {i} drifts inland each winter.")
        dataset = create_dataset(http, "web crawl delay", indexing_technique="economy")
        source = add_source(http, dataset, "web", {"url": site.url + "/", "concurrency": 4})
        assert sync(http, dataset, source["id"])["created"] == 4
        times = [at for path, at in site.arrivals if path not in ("/robots.txt", "/sitemap.xml")]
        assert len(times) == 4, site.arrivals
        assert min(b - a for a, b in zip(times, times[1:])) >= 0.95, site.arrivals
        assert site.most_in_flight == 1


def test_a_crawl_asks_for_pages_in_parallel_up_to_its_concurrency(pipeline: Settings, http: httpx.Client):
    with serve(Website()) as site:
        # So that requests sent together are in flight together, also when a loaded machine sends
        # them some tenths of a second apart (at 0.2 s, 7 of 8 met in a full suite's run)
        site.latency = 1.0
        pages = tuple(f"/s/{i}" for i in range(12))
        site.html("/", "Shells", "Shells of the shore.", pages)
        for i, path in enumerate(pages):
            site.html(path, f"Shell {i}", f"Shell {i} washed up after the storm.")
        dataset = create_dataset(http, "web concurrency", indexing_technique="economy")
        bounded = add_source(http, dataset, "web", {"url": site.url + "/", "concurrency": 3, "sitemap": False})
        assert sync(http, dataset, bounded["id"])["created"] == 13
        assert site.most_in_flight == 3
        site.most_in_flight = 0
        by_default = add_source(http, dataset, "web", {"url": site.url + "/", "sitemap": False})
        assert sync(http, dataset, by_default["id"])["listed"] == 13
        assert site.most_in_flight == 8  # INDEXFLOW_SOURCES_WEB_CONCURRENCY's default
