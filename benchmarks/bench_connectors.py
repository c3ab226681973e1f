"""Connector benchmark (run on demand, not in CI): requests per distinct query, wall time, 304s.

    .venv/bin/python benchmarks/bench_connectors.py [--latency 0.05] [--concurrency 8]

Goals (issue 3), against a loopback fake (127.0.0.1) answering in tests/fixtures' shapes after
50 ms: 500 KRs over 200 distinct queries (Jira 100, GitHub 50 search + 50 repo metrics) make
200 requests; a second run makes at most as many, 304s counted apart; wall time within 1.5x
of the ideal, the slowest source's requests / its max_concurrency x latency (sources run in
parallel); a count over 50,000 issues costs 1 request (Jira Cloud, Data Center, GitHub).
GitHub search pacing (30/min) stays on, on a virtual clock given to the GithubConnector: its
waits are printed apart, not slept. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

from okrsync import logs
from okrsync.config.loader import Config, load
from okrsync.config.plugins import create
from okrsync.connector import Connector
from okrsync.connectors.github import GithubConnector, GithubSource
from okrsync.measure.measurer import ConnectorFactory, Measurer
from okrsync.measure.plan import select as plan
from okrsync.service.once import run_once
from okrsync.store.store import Store

NOW = datetime(2026, 11, 15, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
HUGE = 50_000
PERIOD = "period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}\n"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def count_for(query: str) -> int:
    return HUGE if "huge" in query else int(hashlib.sha1(query.encode()).hexdigest()[:4], 16)


class Fake(BaseHTTPRequestHandler):
    """Jira count endpoints (Data Center and Cloud) and GitHub Enterprise (/api/v3)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    disable_nagle_algorithm = True  # else the body waits ~40 ms for the client's delayed ACK
    latency = 0.05
    hits: ClassVar[Counter[str]] = Counter()
    lock = threading.Lock()

    def _send(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = b"" if status == 304 else json.dumps(data).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status != 304:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _count(self, kind: str) -> None:
        with self.lock:
            self.hits[kind] += 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.latency)
        if urlparse(self.path).path != "/rest/api/3/search/approximate-count":
            self._count(f"unexpected POST {self.path}")
            return self._send(404, {"errorMessages": ["not served by the fake"]})
        self._count("jira cloud count")
        data = fixture("jira/cloud_approximate_count.json")
        self._send(200, {**data, "count": count_for(json.loads(body)["jql"])})

    def do_GET(self) -> None:
        time.sleep(self.latency)
        url = urlparse(self.path)
        args = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/rest/api/2/search" and args.get("maxResults") == "0":
            self._count("jira dc count")
            data = fixture("jira/dc_search_count.json")
            return self._send(200, {**data, "total": count_for(args["jql"])})
        search = url.path == "/api/v3/search/issues"
        limits = {
            "X-RateLimit-Limit": "30" if search else "5000",
            "X-RateLimit-Remaining": "29" if search else "4999",
            "X-RateLimit-Reset": str(int(time.time()) + 60),
            "X-RateLimit-Resource": "search" if search else "core",
        }
        if search:
            self._count("github search")
            data = fixture("github/search_issues_count.json")
            items = data["items"][: int(args.get("per_page", 30))]
            return self._send(200, {**data, "total_count": count_for(args["q"]), "items": items})
        repo = re.fullmatch(
            r"/api/v3/repos/[\w.-]+/[\w.-]+(|/releases|/actions/workflows/.+/runs)", url.path
        )
        kind = {"": "repo", "/releases": "releases"}.get(repo[1], "workflow_runs") if repo else ""
        if not kind:  # serverInfo, Jira paging, other GitHub paths: none expected
            self._count(f"unexpected GET {url.path}")
            return self._send(404, {"message": "Not Found", "errorMessages": ["not served"]})
        self._count(f"github {kind}")
        data = fixture(f"github/{kind}.json")
        etag = '"' + hashlib.sha1(json.dumps(data).encode()).hexdigest() + '"'
        if self.headers.get("If-None-Match") == etag:
            self._count("304")
            return self._send(304, None, {"ETag": etag, **limits})
        self._send(200, data, {"ETag": etag, **limits})

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops SYNs: 1 s connect stalls


class VirtualClock:
    """Clock for the GitHub limiter: sleeping moves it forward at once, and adds up."""

    def __init__(self) -> None:
        self.now, self.slept, self._lock = time.time(), 0.0, threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
            self.slept += seconds


def factory(clock: VirtualClock) -> ConnectorFactory:
    def make(name: str, config: Config) -> Connector:
        source = config.sources[name]
        if isinstance(source, GithubSource):
            return GithubConnector(name, source, clock=clock.time, sleep=clock.sleep)
        return create(name, source)

    return make


def write_config(path: Path, url: str, conc: int, krs: int = 500, queries: int = 200) -> None:
    """`krs` KRs over `queries` distinct ones: half Jira, a quarter search, a quarter repo."""
    lines = [
        PERIOD + "sources:",
        f"  jira: {{type: jira, url: '{url}', deployment: datacenter, max_concurrency: {conc}}}",
        f"  gh: {{type: github, url: '{url}/api/v3', max_concurrency: {conc}}}",
        "objectives:",
    ]
    metrics = ["open_issues", "releases", "workflow_success_rate, workflow: ci.yml, branch: main"]
    for k in range(krs):
        q = k * queries // krs  # neighbours share a query; grouped by source, as people write
        if k % 10 == 0:
            lines += [f"  - id: o{k // 10}", f"    title: Objective {k // 10}", "    key_results:"]
        if q < queries // 2:
            what = f"source: jira, jql: 'project = P{q} AND resolved >= \"{{period.start}}\"'"
        elif q < queries * 3 // 4:
            what = f"source: gh, search: 'repo:acme/r{q} is:pr is:merged merged:>={{period.start}}'"
        else:
            what = f"source: gh, repo: acme/r{q}, metric: {metrics[q % 3]}"
        lines.append(f"      - {{id: k{k}, {what}, target: 100}}")
    path.write_text("\n".join(lines) + "\n")


def huge_counts(work: Path, url: str, clock: VirtualClock) -> dict[str, tuple[int, float | None]]:
    """One count of 50,000 matching issues per kind of source: {source: (requests, value)}."""
    (work / "huge.yaml").write_text(
        PERIOD + "sources:\n"
        f"  jira-cloud: {{type: jira, url: '{url}', deployment: cloud}}\n"
        f"  jira-dc: {{type: jira, url: '{url}', deployment: datacenter}}\n"
        f"  gh: {{type: github, url: '{url}/api/v3'}}\n"
        "objectives:\n  - id: huge\n    title: Huge counts\n    key_results:\n"
        "      - {id: cloud, source: jira-cloud, jql: 'project = huge', target: 1}\n"
        "      - {id: dc, source: jira-dc, jql: 'project = huge', target: 1}\n"
        "      - {id: search, source: gh, search: 'org:huge is:issue', target: 1}\n"
    )
    config = load(work / "huge.yaml")
    measurer = Measurer(config, factory(clock))
    outcomes, requests = measurer.measure(plan(config), NOW), measurer.requests_by_source()
    measurer.close()
    return {o.source: (requests.get(o.source, 0), o.value) for o in outcomes}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    os.environ["OKRSYNC_GH_TOKEN"] = "bench-fake-token"  # with a token: search budget 30/min
    os.environ["OKRSYNC_JIRA_CLOUD_USER"] = "bench@example.invalid"  # Cloud needs user + token
    os.environ["OKRSYNC_JIRA_CLOUD_TOKEN"] = "bench-fake-token"
    Fake.latency = args.latency
    logs.setup("warning")  # as `okrsync sync` does by default: no log line per fetch
    # the connectors import jira and PyGithub on first use: pay that before the clock starts
    importlib.import_module("jira")
    importlib.import_module("okrsync.connectors._github_client")
    server = Server(("127.0.0.1", 0), Fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    missed: list[str] = []

    def goal(ok: bool, text: str) -> None:
        print(("  ok     " if ok else "  MISSED ") + text)
        missed.extend([] if ok else [text])

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_config(work / "okrs.yaml", url, args.concurrency)
        config = load(work / "okrs.yaml")
        krs = plan(config)
        queries = {(k.source, json.dumps(k.query_fields(), sort_keys=True)) for k in krs}
        distinct = dict(Counter(source for source, _ in queries))
        print(f"{len(krs)} KRs, {len(queries)} distinct queries {distinct}, latency ", end="")
        print(f"{args.latency * 1000:g} ms, max_concurrency {args.concurrency} per source")
        clock = VirtualClock()
        measurer = Measurer(config, factory(clock))
        store = Store(work / "bench.db")
        first = 0
        for run in (1, 2):
            Fake.hits.clear()
            paced, began = clock.slept, time.perf_counter()
            result = run_once(config, store, NOW, measurer=measurer)
            took = time.perf_counter() - began
            made = result.requests  # this run's requests alone
            total = sum(made.values())
            gh = measurer._connectors["gh"]
            not_modified = gh.not_modified if isinstance(gh, GithubConnector) else -1
            ideal = max(made[s] / config.sources[s].max_concurrency for s in made) * args.latency
            serial = total / args.concurrency * args.latency
            served = {k: v for k, v in sorted(Fake.hits.items()) if k != "304"}
            print(
                f"run {run}: requests {made}, total {total}; fake served {served}\n"
                f"  304s {Fake.hits['304']} (GithubConnector.not_modified: {not_modified})\n"
                f"  wall {took:.3f} s = {took / ideal:.2f} x ideal {ideal:.3f} s; "
                f"{took / serial:.2f} x {serial:.3f} s if read as all {total} requests / "
                f"{args.concurrency} x latency (sources one after another)\n"
                f"  GitHub search pacing: {clock.slept - paced:.0f} s on the virtual clock, "
                "not in the wall time (its 60 s window spans runs)"
            )
            failed = [f"{r.kr_id}: {r.error}" for r in result.failed]
            goal(not failed, f"every KR measured ({len(failed)} failed) {failed[:1] or ''}")
            counts = [
                r
                for r in result.measurements
                if r.source == "jira" or (r.query or "").startswith("repo:")
            ]
            wrong = [r.kr_id for r in counts if r.value != count_for(r.query or "")]
            goal(not wrong, f"{len(counts)} count KRs hold the fake's counts {wrong[:3] or ''}")
            if run == 1:
                first = total
                goal(made == distinct, "requests per source = distinct queries per source")
            else:
                goal(total <= first, f"requests {total} <= run 1's {first}")
                goal(Fake.hits["304"] == 50, f"{Fake.hits['304']} of them 304s (50 repo queries)")
            seen = sum(served.values())
            goal(seen == total, f"fake saw {seen} requests = connectors counted {total}")
            goal(took <= 1.5 * ideal, f"wall {took:.3f} s <= 1.5 x ideal = {1.5 * ideal:.3f} s")
        measurer.close()
        store.close()
        Fake.hits.clear()
        huge = huge_counts(work, url, clock)
        print(f"50,000 matching issues, {{source: (requests, count)}}: {huge}; ", end="")
        print(f"fake served {dict(Fake.hits)}")
        for source in ("jira-cloud", "jira-dc", "gh"):
            goal(huge.get(source) == (1, float(HUGE)), f"{source}: counted in 1 request")
    server.shutdown()
    print("all goals met" if not missed else f"{len(missed)} goal(s) missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
