"""Estimates wait in a queue of their own, not in the gateway's threads: another tenant's requests
are answered while one tenant's estimates are queued, and its estimate takes its turn between
them. An estimate whose client left, or past its time limit, is abandoned; beyond a tenant's
concurrent estimates, 429."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from services.runtime.settings import Settings
from tests.conftest import SHARED
from tests.support.gateway import extra_gateway, extra_gateway_process

SCAN = SHARED / "corpus" / "documents" / "img_DA-1p.jpg"  # a scanned page: OCR takes seconds
# Several scanned pages: seconds more than the time limit of the last test.
SCANS = SHARED / "corpus" / "documents" / "img_layout-parser-paper-combined.tiff"
LINE = ("line.txt", b"One line to estimate.")


@pytest.fixture(scope="module")
def queued(pipeline: Settings) -> Iterator[str]:
    """One sandbox for estimates, and limits high enough for one tenant to queue many."""
    with extra_gateway(INDEXFLOW_GATEWAY_ESTIMATE_WORKERS="1", INDEXFLOW_GATEWAY_MAX_ESTIMATES_PER_TENANT="100",
                       INDEXFLOW_GATEWAY_ESTIMATE_QUEUE="100",
                       INDEXFLOW_GATEWAY_MAX_REQUESTS_IN_FLIGHT_PER_TENANT="100") as url:
        yield url


def scan() -> tuple[str, bytes]:
    return SCAN.name, SCAN.read_bytes()


async def estimates(url: str, tenant: str, count: int, file: tuple[str, bytes],
                    done: list[float]) -> list[asyncio.Task]:
    """``count`` estimates sent at once; each appends when it was answered to ``done``."""
    client = httpx.AsyncClient(base_url=url, headers={"X-Tenant-Id": tenant}, timeout=300,
                               limits=httpx.Limits(max_connections=count + 1))

    async def one() -> None:
        response = await client.post("/v1/datasets/est/document/estimate", files={"file": file})
        assert response.status_code == 200, response.text
        done.append(time.monotonic())

    return [asyncio.create_task(one()) for _ in range(count)]


async def cancel(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def abandoned(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.search(r'^indexflow_estimates_total\{outcome="abandoned"\} ([0-9.e+]+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


def test_queued_estimates_hold_no_gateway_thread(queued: str):
    """More queued estimates than the gateway has threads: another tenant's listing is answered
    while nearly all of them still wait, and those whose client leaves are abandoned."""
    before = abandoned(queued)

    async def run() -> tuple[int, int]:
        done: list[float] = []
        tasks = await estimates(queued, "est-many", 45, scan(), done)
        await asyncio.sleep(2)  # every estimate has arrived
        async with httpx.AsyncClient(base_url=queued, headers={"X-Tenant-Id": "est-other"}, timeout=300) as other:
            listing = await other.get("/v1/datasets")
        assert listing.status_code == 200, listing.text
        pending = sum(not task.done() for task in tasks)
        await cancel(tasks)  # the clients go away
        return pending, len(done)

    pending, _ = asyncio.run(run())
    assert pending >= 40, f"only {pending} of 45 estimates were still queued when another tenant was answered"
    deadline = time.monotonic() + 30
    while abandoned(queued) - before < 30 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert abandoned(queued) - before >= 30


def test_another_tenants_estimate_takes_its_turn(queued: str):
    async def run() -> int:
        done: list[float] = []
        tasks = await estimates(queued, "est-queue", 8, scan(), done)
        await asyncio.sleep(1)
        # Counted from when it is sent: a fast machine answers one scan within that second
        finished_before = len(done)
        async with httpx.AsyncClient(base_url=queued, headers={"X-Tenant-Id": "est-turn"}, timeout=300) as other:
            answer = await other.post("/v1/datasets/est/document/estimate", files={"file": LINE})
        assert answer.status_code == 200 and answer.json()["total_segments"] == 1, answer.text
        finished_meanwhile = len(done) - finished_before
        await cancel(tasks)
        assert finished_before < 6, "the other tenant's estimates were answered before the test could queue"
        return finished_meanwhile

    # The one running when it came, the one whose turn was next, and (on a machine loaded enough that
    # the answer's way back takes a scan's time: a full suite's once) the one after: never the rest
    # of the queue of eight
    assert asyncio.run(run()) <= 3, "the one-line estimate waited behind the other tenant's queue"


def test_estimates_past_a_tenants_limit_or_their_time_are_refused(pipeline: Settings):
    # Half a second: the scan's OCR takes about 2 s on a quiet machine (a 3 s limit let it finish)
    with extra_gateway(INDEXFLOW_GATEWAY_MAX_ESTIMATES_PER_TENANT="1",
                       INDEXFLOW_GATEWAY_ESTIMATE_SECONDS="0.5") as url:
        async def run() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, headers={"X-Tenant-Id": "est-limited"}, timeout=60) as http:
                pages = (SCANS.name, SCANS.read_bytes())
                sent = [http.post("/v1/datasets/est/document/estimate", files={"file": pages}) for _ in range(3)]
                return await asyncio.gather(*sent)

        answers = asyncio.run(run())
        too_many = [a for a in answers if a.status_code == 429]
        assert len(too_many) == 2, [(a.status_code, a.text[:200]) for a in answers]
        assert "estimates" in too_many[0].json()["message"] and int(too_many[0].headers["Retry-After"]) >= 1
        [slow] = [a for a in answers if a.status_code != 429]
        assert slow.status_code in (400, 503) and "INDEXFLOW_GATEWAY_ESTIMATE_SECONDS" in slow.json()["message"], \
            slow.text
        for _ in range(20):  # the abandoned one counts until its extraction is killed: retry after what 429 says
            line = httpx.post(f"{url}/v1/datasets/est/document/estimate", files={"file": LINE},
                              headers={"X-Tenant-Id": "est-limited"}, timeout=60)
            if line.status_code != 429:
                break
            time.sleep(int(line.headers["Retry-After"]))
        # Admitted once the abandoned one is gone: answered, or (a loaded machine's full suite took
        # over 0.5 s for one line once) refused for its time, never for the tenant's limit
        assert line.status_code == 200 or "INDEXFLOW_GATEWAY_ESTIMATE_SECONDS" in line.json()["message"], line.text


def first_answer_to_an_unfinished_upload(url: str, path: str, tenant: str) -> bytes:
    """The first bytes the gateway answers to a multipart upload of 1 MB of which it has 100 bytes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nX-Tenant-Id: {tenant}\r\n"
                     "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n"
                     '--b\r\nContent-Disposition: form-data; name="file"; filename="scan.jpg"\r\n\r\n'.encode())
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
                sock.settimeout(1)  # the rest of an answer begun
        except TimeoutError:
            pass
        return answer or b"(nothing within 10 s)"


def test_an_estimate_past_the_tenants_limit_is_refused_before_its_upload_is_read(pipeline: Settings):
    """A hostile tenant sending scanned pages past its limit costs the gateway no upload read and
    parsed (megabytes each) for every refusal."""
    with extra_gateway_process(INDEXFLOW_GATEWAY_MAX_ESTIMATES_PER_TENANT="1") as (url, _):
        running = threading.Thread(target=lambda: httpx.post(
            f"{url}/v1/datasets/est/document/estimate", files={"file": (SCANS.name, SCANS.read_bytes())},
            headers={"X-Tenant-Id": "est-upload"}, timeout=120))
        running.start()
        time.sleep(2)  # its upload read, its OCR under way
        answer = first_answer_to_an_unfinished_upload(url, "/v1/datasets/est/document/estimate", "est-upload")
        assert answer.startswith(b"HTTP/1.1 429"), answer[:300]
        assert b"estimates" in answer and b"retry-after: 1" in answer.lower()
        other = first_answer_to_an_unfinished_upload(url, "/v1/datasets/est/document/estimate", "est-other")
        assert other == b"(nothing within 10 s)", other[:300]  # another tenant's upload is read as it comes
        running.join(120)
