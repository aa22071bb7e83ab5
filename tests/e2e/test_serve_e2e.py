"""End-to-end tests of `trialmatch serve` with a real Python gRPC client.

Each test starts the real binary (`trialmatch serve --listen=127.0.0.1:0
--port_file=...`) on a fresh store in a temp dir, in front of the fake
ClinicalTrials.gov (tests/fake_ctgov/, the recorded corpus on 127.0.0.1), and
talks to it through stubs generated at start-up from proto/ (tools/tmctl.py).
Expected values come from the recorded JSON files and from the fake's own
HTTP answers, never from the server under test.

Run by ctest as `server_e2e` (label e2e), or by hand from tests/e2e/:
    TRIALMATCH_BINARY=<build>/trialmatch TRIALMATCH_SHARED_DATA_DIR=<shared>/data \\
        /usr/bin/python3 -B -m unittest -v test_serve_e2e
Every process is killed in tearDown; every RPC has a deadline.
"""

import csv
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools"))
sys.path.insert(0, os.path.join(REPO, "tests", "fake_ctgov"))

import grpc  # noqa: E402

import tmctl  # noqa: E402
from fake_ctgov_client import SpawnedFake, shared_ctgov_dir  # noqa: E402

BINARY = os.environ.get("TRIALMATCH_BINARY",
                        os.path.join(REPO, "build", "dev", "trialmatch"))
DATA_DIR = shared_ctgov_dir()
STUDIES_DIR = os.path.join(DATA_DIR, "studies")
SERVICE = "trialmatch.v1.StudyService"
RPC_TIMEOUT = 60  # seconds, every call
STUDY = "NCT04280705"  # recorded, COMPLETED, has results
BIG = "NCT02513394"    # the largest recorded record

S = None       # generated stubs
FAKE = None    # the shared fake upstream (tests needing their own make one)


def setUpModule():
    global S, FAKE
    if not os.path.isdir(STUDIES_DIR):
        raise RuntimeError(f"recorded data missing at {STUDIES_DIR}")
    if not os.access(BINARY, os.X_OK):
        raise RuntimeError(f"trialmatch binary missing at {BINARY} "
                           "(set TRIALMATCH_BINARY)")
    S = tmctl.load_stubs()
    FAKE = SpawnedFake(DATA_DIR, python=sys.executable).start()


def tearDownModule():
    if FAKE is not None:
        FAKE.stop()


def recorded(nct_id):
    with open(os.path.join(STUDIES_DIR, nct_id + ".json"),
              encoding="utf-8") as f:
        return json.load(f)


def fake_count(fake, path):
    status, _, body = fake.get(f"/__control/stats/count?path={path}")
    assert status == 200, body
    return int(body)


class Server:
    """One `trialmatch serve` process on its own store."""

    def __init__(self, workdir, upstream_url=None, flags=(), store=None,
                 wait_serving=True):
        self.workdir = workdir
        self.store = store or os.path.join(workdir, "studies.db")
        self.port_file = os.path.join(workdir, "port")
        self.log_path = os.path.join(workdir, "serve.log")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        cmd = [BINARY, "serve", "--listen=127.0.0.1:0",
               f"--port_file={self.port_file}", f"--store={self.store}",
               "--requests_per_second=0", "--upstream_attempts=3",
               "--upstream_retry_budget=8s", "--upstream_timeout=4s",
               "--upstream_probe_interval=1s", "--shutdown_grace=5s"]
        if upstream_url:
            cmd.append(f"--ctgov_base_url={upstream_url}")
        cmd += list(flags)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError("serve wrote no port file in 30 s")
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read().strip())
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = S.study_service_pb2_grpc.StudyServiceStub(self.channel)
        if wait_serving:
            self.wait_health("SERVING")

    def health(self, service=""):
        return tmctl.health(self.channel, service, timeout=10)

    def wait_health(self, want, service="", seconds=30):
        deadline = time.monotonic() + seconds
        while True:
            got = self.health(service)
            if got == want:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"health is {got}, not {want}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, wait=15):
        """Signals the process; returns its exit code (kills after `wait`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.channel.close()
        self.log.close()
        return self.proc.returncode

    def log_tail(self, lines=40):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])


class E2ETestCase(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="trialmatch-e2e-")
        self.servers = []
        self.fakes = []
        FAKE.control("reset")

    def tearDown(self):
        failed = not getattr(self._outcome, "success", True)
        for server in self.servers:
            server.stop(signal.SIGKILL if failed else signal.SIGTERM)
            if failed:
                sys.stderr.write(f"\n--- serve log ---\n{server.log_tail()}")
        for fake in self.fakes:
            fake.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def serve(self, upstream="shared", flags=(), **kwargs):
        """A server in front of `upstream` (the shared fake by default; a
        SpawnedFake; or None for no --ctgov_base_url)."""
        fake = FAKE if upstream == "shared" else upstream
        server = Server(self.workdir, fake.base_url if fake else None, flags,
                        **kwargs)
        self.servers.append(server)
        return server

    def own_fake(self):
        fake = SpawnedFake(DATA_DIR, python=sys.executable).start()
        self.fakes.append(fake)
        return fake

    # -- calls ------------------------------------------------------------
    def get_study(self, server, nct_id, **fields):
        req = S.study_service_pb2.GetStudyRequest(nct_id=nct_id, **fields)
        return server.stub.GetStudy(req, timeout=RPC_TIMEOUT)

    def search(self, server, **fields):
        req = S.study_service_pb2.SearchStudiesRequest(**fields)
        return server.stub.SearchStudies(req, timeout=RPC_TIMEOUT)

    def assert_code(self, code, fn, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as ctx:
            fn(*args, **kwargs)
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
        return ctx.exception.details()

    def integrity_ok(self, store):
        out = subprocess.run(["sqlite3", store, "PRAGMA integrity_check;"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.stdout.strip(), "ok", out.stderr)


class StudyRpcTest(E2ETestCase):
    def test_get_study_typed_fields_match_the_recorded_json(self):
        server = self.serve()
        for nct_id in (STUDY, "NCT00000410", "NCT00002708", BIG):
            with self.subTest(nct_id):
                r = self.get_study(server, nct_id)
                want = recorded(nct_id)
                p = want["protocolSection"]
                s = r.study
                self.assertEqual(json.loads(s.record_json), want)
                self.assertEqual(s.nct_id, nct_id)
                self.assertEqual(s.brief_title,
                                 p["identificationModule"]["briefTitle"])
                self.assertEqual(s.overall_status,
                                 p["statusModule"]["overallStatus"])
                self.assertEqual(
                    s.last_update_post_date,
                    p["statusModule"]["lastUpdatePostDateStruct"]["date"])
                self.assertEqual(list(s.conditions),
                                 p["conditionsModule"]["conditions"])
                self.assertEqual(list(s.phases),
                                 p.get("designModule", {}).get("phases", []))
                em = p["eligibilityModule"]
                self.assertEqual(s.eligibility.criteria,
                                 em["eligibilityCriteria"])
                self.assertEqual(s.eligibility.minimum_age,
                                 em.get("minimumAge", ""))
                self.assertEqual(s.eligibility.sex, em.get("sex", ""))
                locations = p.get("contactsLocationsModule", {}).get(
                    "locations", [])
                self.assertEqual(len(s.locations), len(locations))
                for got, loc in zip(s.locations, locations):
                    self.assertEqual(got.city, loc.get("city", ""))
                    if "geoPoint" in loc:
                        self.assertAlmostEqual(got.geo_point.lat,
                                               loc["geoPoint"]["lat"])
                meshes = want.get("derivedSection", {}).get(
                    "conditionBrowseModule", {}).get("meshes", [])
                self.assertEqual([m.id for m in s.condition_meshes],
                                 [m["id"] for m in meshes])
                self.assertEqual(s.has_results, want.get("hasResults", False))
                self.assertEqual(r.freshness.source,
                                 S.study_pb2.DATA_SOURCE_UPSTREAM)

    def test_get_study_is_cache_first_with_max_age(self):
        server = self.serve()
        path = f"/api/v2/studies/{STUDY}"
        first = self.get_study(server, STUDY)
        self.assertEqual(first.freshness.source,
                         S.study_pb2.DATA_SOURCE_UPSTREAM)
        self.assertEqual(fake_count(FAKE, path), 1)
        second = self.get_study(server, STUDY)
        self.assertEqual(second.freshness.source, S.study_pb2.DATA_SOURCE_CACHE)
        self.assertFalse(second.freshness.upstream_unavailable)
        self.assertEqual(second.study.record_json, first.study.record_json)
        self.assertEqual(fake_count(FAKE, path), 1)
        forced = self.get_study(server, STUDY, max_cache_age_seconds=0)
        self.assertEqual(forced.freshness.source,
                         S.study_pb2.DATA_SOURCE_UPSTREAM)
        self.assertEqual(fake_count(FAKE, path), 2)

    def test_csv_format(self):
        server = self.serve()
        r = self.get_study(server, STUDY, format=S.study_pb2.FORMAT_CSV)
        rows = list(csv.reader(io.StringIO(r.csv)))
        self.assertEqual(rows[0][0], "NCT Number")
        self.assertEqual(rows[1][0], STUDY)

        # A CSV search paged with our tokens: one header, all rows.
        req = dict(query=S.study_service_pb2.StudyQuery(cond="asthma"),
                   format=S.study_pb2.FORMAT_CSV, page_size=7)
        text, pages = "", 0
        while True:
            page = self.search(server, **req)
            pages += 1
            if pages > 1:
                self.assertFalse(page.csv.startswith("NCT Number"))
            text += page.csv
            if not page.next_page_token:
                break
            req["page_token"] = page.next_page_token
        rows = list(csv.reader(io.StringIO(text)))
        _, _, body = FAKE.get("/api/v2/studies?format=json&query.cond=asthma"
                              "&pageSize=1000&fields=NCTId")
        want = [s["protocolSection"]["identificationModule"]["nctId"]
                for s in json.loads(body)["studies"]]
        self.assertGreater(pages, 1)
        self.assertEqual([row[0] for row in rows[1:]], want)

    def test_search_pages_through_all_results(self):
        server = self.serve()
        _, _, body = FAKE.get("/api/v2/studies?query.cond=cancer"
                              "&filter.overallStatus=RECRUITING"
                              "&pageSize=1000&fields=NCTId&countTotal=true")
        expected = json.loads(body)
        want = [s["protocolSection"]["identificationModule"]["nctId"]
                for s in expected["studies"]]
        self.assertGreater(len(want), 40)
        req = dict(query=S.study_service_pb2.StudyQuery(cond="cancer"),
                   filter=S.study_service_pb2.StudyFilter(
                       overall_status=["recruiting"]),
                   page_size=40, count_total=True)
        got, first = [], True
        while True:
            page = self.search(server, **req)
            if first:
                self.assertEqual(page.total_count, expected["totalCount"])
                first = False
            self.assertEqual(page.freshness.source,
                             S.study_pb2.DATA_SOURCE_UPSTREAM)
            for s in page.studies:
                self.assertEqual(s.overall_status, "RECRUITING")
                self.assertTrue(s.record_json)
            got += [s.nct_id for s in page.studies]
            if not page.next_page_token:
                break
            self.assertTrue(page.next_page_token.startswith("tm1"))
            req["page_token"] = page.next_page_token
        self.assertEqual(got, want)

    def test_list_all_streams_with_limit_and_summary(self):
        server = self.serve()
        req = S.study_service_pb2.ListAllStudiesRequest(
            filter=S.study_service_pb2.StudyFilter(
                overall_status=["NOT_YET_RECRUITING"]),
            page_size=30, limit=45)
        messages = list(server.stub.ListAllStudies(req, timeout=RPC_TIMEOUT))
        self.assertEqual(len(messages), 46)
        self.assertTrue(all(m.HasField("study") for m in messages[:45]))
        summary = messages[-1].summary
        self.assertEqual(summary.total_returned, 45)
        # Without a limit: every match (102 NOT_YET_RECRUITING recorded).
        req.limit = 0
        messages = list(server.stub.ListAllStudies(req, timeout=RPC_TIMEOUT))
        ids = [m.study.nct_id for m in messages if m.HasField("study")]
        want = sorted(n[:-5] for n in os.listdir(STUDIES_DIR)
                      if n.endswith(".json") and recorded(n[:-5])[
                          "protocolSection"]["statusModule"]["overallStatus"]
                      == "NOT_YET_RECRUITING")
        self.assertEqual(ids, want)
        self.assertEqual(messages[-1].summary.total_returned, len(want))

    def test_endpoint_operations(self):
        server = self.serve()
        pb = S.study_service_pb2
        stub = server.stub
        calls = [
            ("/api/v2/studies/metadata",
             lambda: stub.GetStudiesMetadata(pb.GetStudiesMetadataRequest(),
                                             timeout=RPC_TIMEOUT)),
            ("/api/v2/studies/search-areas",
             lambda: stub.GetSearchAreas(pb.GetSearchAreasRequest(),
                                         timeout=RPC_TIMEOUT)),
            ("/api/v2/studies/enums",
             lambda: stub.GetEnums(pb.GetEnumsRequest(), timeout=RPC_TIMEOUT)),
            ("/api/v2/stats/size",
             lambda: stub.GetStatsSize(pb.GetStatsSizeRequest(),
                                       timeout=RPC_TIMEOUT)),
            ("/api/v2/version",
             lambda: stub.GetApiVersion(pb.GetApiVersionRequest(),
                                        timeout=RPC_TIMEOUT)),
        ]
        for path, call in calls:
            with self.subTest(path):
                before = fake_count(FAKE, path)
                r = call()
                upstream = json.loads(FAKE.get(path)[2])
                self.assertIn(r.freshness.source,
                              (S.study_pb2.DATA_SOURCE_UPSTREAM,
                               S.study_pb2.DATA_SOURCE_CACHE))
                if path.endswith("metadata"):
                    self.assertEqual(json.loads(r.json), upstream)
                    self.assertEqual([f.name for f in r.fields],
                                     [f["name"] for f in upstream])
                elif path.endswith("search-areas"):
                    self.assertEqual(json.loads(r.json), upstream)
                    self.assertEqual(
                        [a.param for a in r.documents[0].areas],
                        [a.get("param", "") for a in upstream[0]["areas"]])
                elif path.endswith("enums"):
                    self.assertEqual(json.loads(r.json), upstream)
                    status = [e for e in r.enums if e.type == "Status"][0]
                    self.assertIn("RECRUITING", [v.value for v in status.values])
                elif path.endswith("size"):
                    self.assertEqual(json.loads(r.json), upstream)
                    self.assertEqual(r.total_studies, upstream["totalStudies"])
                    self.assertEqual(r.largest_studies[0].id,
                                     upstream["largestStudies"][0]["id"])
                else:
                    self.assertEqual(r.api_version, upstream["apiVersion"])
                    self.assertEqual(r.data_timestamp,
                                     upstream["dataTimestamp"])
                    self.assertTrue(r.server_version)
                # The second call is served from the endpoint cache.
                again = call()
                self.assertEqual(again.freshness.source,
                                 S.study_pb2.DATA_SOURCE_CACHE)
                self.assertLessEqual(fake_count(FAKE, path) - before, 2)

    def test_errors_have_the_right_codes(self):
        server = self.serve()
        codes = grpc.StatusCode
        pb = S.study_service_pb2
        for bad in ("NCT123", "nct0428070x", "", "DROP TABLE"):
            self.assert_code(codes.INVALID_ARGUMENT, self.get_study, server, bad)
        self.assert_code(codes.NOT_FOUND, self.get_study, server, "NCT09999999")
        for size in (1001, -1):
            details = self.assert_code(codes.INVALID_ARGUMENT, self.search,
                                       server, page_size=size)
            self.assertIn("page_size", details)
        details = self.assert_code(
            codes.INVALID_ARGUMENT, self.search, server,
            filter=pb.StudyFilter(overall_status=["RECRUTING"]))
        self.assertIn("NOT_YET_RECRUITING", details)
        for token in ("garbage", "tm1xyz", "o3"):
            self.assert_code(codes.INVALID_ARGUMENT, self.search, server,
                             page_token=token)
        first = self.search(server, query=pb.StudyQuery(cond="cancer"),
                            page_size=5)
        details = self.assert_code(
            codes.INVALID_ARGUMENT, self.search, server,
            query=pb.StudyQuery(cond="asthma"),
            page_token=first.next_page_token)
        self.assertIn("different query", details)
        with self.assertRaises(grpc.RpcError) as ctx:
            list(server.stub.ListAllStudies(pb.ListAllStudiesRequest(limit=-4),
                                            timeout=RPC_TIMEOUT))
        self.assertEqual(ctx.exception.code(), codes.INVALID_ARGUMENT)


class HealthAndReflectionTest(E2ETestCase):
    def test_reflection_lists_the_services(self):
        server = self.serve()
        names = tmctl.list_services(server.channel)
        for name in (SERVICE, "grpc.health.v1.Health",
                     "grpc.reflection.v1alpha.ServerReflection"):
            self.assertIn(name, names)

    def test_not_serving_until_the_store_opens(self):
        # Another process holds the store's lock: the server listens, says
        # NOT_SERVING, and turns SERVING once the lock is released.
        store = os.path.join(self.workdir, "locked.db")
        lock = sqlite3.connect(store, isolation_level=None, timeout=1)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            server = self.serve(store=store, wait_serving=False)
            time.sleep(0.5)
            self.assertEqual(server.health(), "NOT_SERVING")
            self.assertEqual(server.health(SERVICE), "NOT_SERVING")
            details = self.assert_code(grpc.StatusCode.UNAVAILABLE,
                                       self.get_study, server, STUDY)
            self.assertIn("starting", details)
        finally:
            lock.execute("COMMIT")
            lock.close()
        server.wait_health("SERVING", seconds=30)
        server.wait_health("SERVING", SERVICE)
        self.assertEqual(self.get_study(server, STUDY).study.nct_id, STUDY)

    def test_sigterm_is_a_graceful_exit(self):
        server = self.serve()
        self.get_study(server, STUDY)
        self.assertEqual(server.stop(signal.SIGTERM), 0)
        log = server.log_tail()
        self.assertIn("SIGTERM", log)
        self.assertIn("bye", log)


class FaultTest(E2ETestCase):
    """Faults of the upstream: bounded retries, then UNAVAILABLE or the
    cached copy flagged; the store is unharmed."""

    FAULTS = [
        {"kind": "429", "retry_after": 1},
        {"kind": "503"},
        {"kind": "500"},
        {"kind": "reset"},
        {"kind": "stall", "stall_seconds": 8, "after_bytes": 10},
        {"kind": "truncate"},
        {"kind": "malformed_json"},
        {"kind": "html"},
    ]

    def test_faults_bounded_retries_then_fallback(self):
        cached, uncached = STUDY, "NCT00000410"
        for fault in self.FAULTS:
            with self.subTest(fault["kind"]):
                FAKE.control("reset")
                workdir = tempfile.mkdtemp(dir=self.workdir)
                server = Server(workdir, FAKE.base_url,
                                ["--upstream_timeout=3s"])
                self.servers.append(server)
                self.get_study(server, cached)  # now in the store
                rule = dict(fault, path="/api/v2/studies/", count=1000)
                FAKE.control("faults", rule)
                started = time.monotonic()
                r = self.get_study(server, cached, max_cache_age_seconds=0)
                self.assertLess(time.monotonic() - started, 45)
                self.assertEqual(r.freshness.source,
                                 S.study_pb2.DATA_SOURCE_CACHE)
                self.assertTrue(r.freshness.upstream_unavailable)
                self.assertIn("unavailable", r.freshness.note)
                self.assertEqual(json.loads(r.study.record_json),
                                 recorded(cached))
                # Bounded: --upstream_attempts=3 (libcurl may resend once on
                # a reset reused connection).
                tries = fake_count(FAKE, f"/api/v2/studies/{cached}")
                self.assertGreaterEqual(tries, 1 + 2)
                self.assertLessEqual(tries, 1 + 3 + 1)
                # Nothing cached: UNAVAILABLE.
                self.assert_code(grpc.StatusCode.UNAVAILABLE, self.get_study,
                                 server, uncached)
                self.integrity_ok(server.store)
                # The store still holds the good record, byte for byte.
                con = sqlite3.connect(f"file:{server.store}?mode=ro", uri=True)
                raw = con.execute(
                    "SELECT j.raw_json FROM study_json j JOIN studies s "
                    "ON s.id = j.id WHERE s.nct_id = ?", (cached,)).fetchone()
                con.close()
                self.assertEqual(json.loads(raw[0]), recorded(cached))
                server.stop()
                self.servers.remove(server)

    def test_transient_429_with_retry_after_is_waited_out(self):
        server = self.serve()
        FAKE.control("faults", {"kind": "429", "retry_after": 1, "count": 2,
                                "path": f"/api/v2/studies/{STUDY}"})
        started = time.monotonic()
        r = self.get_study(server, STUDY)
        self.assertGreaterEqual(time.monotonic() - started, 1.0)
        self.assertEqual(r.freshness.source, S.study_pb2.DATA_SOURCE_UPSTREAM)
        self.assertEqual(fake_count(FAKE, f"/api/v2/studies/{STUDY}"), 3)

    def test_upstream_completely_down(self):
        fake = self.own_fake()
        server = self.serve(upstream=fake)
        pb = S.study_service_pb2
        ids = [STUDY, "NCT00000410", "NCT00002708"]
        for nct_id in ids:
            self.get_study(server, nct_id)
        server.stub.GetEnums(pb.GetEnumsRequest(), timeout=RPC_TIMEOUT)
        fake.stop()  # gone: connections refused

        r = self.get_study(server, STUDY, max_cache_age_seconds=0)
        self.assertEqual(r.freshness.source, S.study_pb2.DATA_SOURCE_CACHE)
        self.assertTrue(r.freshness.upstream_unavailable)
        self.assertEqual(r.study.nct_id, STUDY)
        self.assert_code(grpc.StatusCode.UNAVAILABLE, self.get_study, server,
                         "NCT01234567")
        # Simple searches come from the local store, flagged.
        covid = recorded(STUDY)["protocolSection"]["conditionsModule"][
            "conditions"][0]
        page = self.search(server, query=pb.StudyQuery(cond=covid),
                           count_total=True)
        self.assertIn(STUDY, [s.nct_id for s in page.studies])
        self.assertEqual(page.freshness.source, S.study_pb2.DATA_SOURCE_CACHE)
        self.assertTrue(page.freshness.upstream_unavailable)
        self.assertIn("local store", page.freshness.note)
        all_local = self.search(server, page_size=100)
        self.assertEqual(sorted(s.nct_id for s in all_local.studies),
                         sorted(ids))
        self.assert_code(grpc.StatusCode.UNAVAILABLE, self.search, server,
                         query=pb.StudyQuery(locn="Boston"))
        # Endpoints: cached ones answer, flagged; the others are UNAVAILABLE.
        enums = server.stub.GetEnums(pb.GetEnumsRequest(), timeout=RPC_TIMEOUT)
        self.assertEqual(enums.freshness.source, S.study_pb2.DATA_SOURCE_CACHE)
        self.assert_code(grpc.StatusCode.UNAVAILABLE, server.stub.GetStatsSize,
                         pb.GetStatsSizeRequest(), timeout=RPC_TIMEOUT)
        # ListAll falls back too.
        messages = list(server.stub.ListAllStudies(
            pb.ListAllStudiesRequest(limit=2), timeout=RPC_TIMEOUT))
        self.assertEqual(messages[-1].summary.total_returned, 2)
        self.assertTrue(messages[-1].summary.freshness.upstream_unavailable)
        self.assertEqual(server.health(), "SERVING")
        self.integrity_ok(server.store)


class LargeStudyTest(E2ETestCase):
    def test_3_6_mb_study_reaches_a_default_client(self):
        # The registry's largest study is ~3.6 MB: enlarge a real record's
        # resultsSection to that size and serve it from the fake.
        study = recorded(BIG)
        measures = study["resultsSection"]["outcomeMeasuresModule"][
            "outcomeMeasures"]
        originals = list(measures)
        target = int(3.6 * 1024 * 1024)  # bytes of compact UTF-8 JSON
        size = len(json.dumps(study, separators=(",", ":"),
                              ensure_ascii=False).encode())
        i = 0
        while size < target + 16 * 1024:
            m = originals[i % len(originals)]
            measures.append(m)
            size += len(json.dumps(m, separators=(",", ":"),
                                   ensure_ascii=False).encode()) + 1
            i += 1
        FAKE.control("studies/put", {"study": study})
        server = self.serve()
        # Default client options: 4 MiB receive limit.
        for source in (S.study_pb2.DATA_SOURCE_UPSTREAM,
                       S.study_pb2.DATA_SOURCE_CACHE):
            r = self.get_study(server, BIG)
            self.assertEqual(r.freshness.source, source)
            self.assertGreaterEqual(len(r.study.record_json.encode()), target)
            self.assertEqual(json.loads(r.study.record_json), study)
            self.assertLessEqual(r.ByteSize(), 4 * 1024 * 1024)
        messages = list(server.stub.ListAllStudies(
            S.study_service_pb2.ListAllStudiesRequest(
                query=S.study_service_pb2.StudyQuery(term=BIG), limit=1),
            timeout=RPC_TIMEOUT))
        self.assertEqual(messages[0].study.nct_id, BIG)
        self.assertEqual(json.loads(messages[0].study.record_json), study)


class ImportedStoreTest(E2ETestCase):
    def test_offline_server_on_an_imported_store(self):
        # Seed with `trialmatch import`, serve with --offline: no upstream.
        seed = os.path.join(self.workdir, "seed")
        os.mkdir(seed)
        names = sorted(n for n in os.listdir(STUDIES_DIR)
                       if n.endswith(".json"))[:40]
        for n in names:
            shutil.copy(os.path.join(STUDIES_DIR, n), seed)
        store = os.path.join(self.workdir, "imported.db")
        done = subprocess.run([BINARY, "import", f"--store={store}", seed],
                              capture_output=True, text=True, timeout=300)
        self.assertEqual(done.returncode, 0, done.stderr)
        server = self.serve(upstream=None, flags=["--offline"], store=store)
        ids = [n[:-5] for n in names]
        r = self.get_study(server, ids[5])
        self.assertEqual(json.loads(r.study.record_json), recorded(ids[5]))
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.get_study, server,
                         "NCT09999999")
        got, req = [], dict(page_size=15)
        while True:
            page = self.search(server, **req)
            self.assertEqual(page.freshness.source,
                             S.study_pb2.DATA_SOURCE_CACHE)
            got += [s.nct_id for s in page.studies]
            if not page.next_page_token:
                break
            req["page_token"] = page.next_page_token
        self.assertEqual(got, ids)
        self.assert_code(grpc.StatusCode.FAILED_PRECONDITION, self.search,
                         server, sort=["LastUpdatePostDate"])


# A RECRUITING study whose criteria text has multi-byte UTF-8 ("≥") before
# its lab bounds: its spans count bytes, not characters.
UTF8_STUDY = "NCT01785420"
CRITERIA_FIELD = "protocolSection.eligibilityModule.eligibilityCriteria"


class CriteriaRpcTest(E2ETestCase):
    """GetStudyCriteria and GetStudy.include_criteria. Expected values come
    from the recorded records (their eligibility text, structured fields) and
    from `trialmatch criteria --json --file` on the same record."""

    def criteria_server(self, upstream="shared", flags=(), **kwargs):
        return self.serve(upstream=upstream,
                          flags=[f"--rules={os.path.join(REPO, 'rules')}"] +
                          list(flags), **kwargs)

    def get_criteria(self, server, nct_id):
        return server.stub.GetStudyCriteria(
            S.study_service_pb2.GetStudyCriteriaRequest(nct_id=nct_id),
            timeout=RPC_TIMEOUT)

    def wait_refreshed(self, server, seconds=60):
        """Waits for the refresher's first pass (logged) to end."""
        deadline = time.monotonic() + seconds
        while "compiled criteria are up to date" not in server.log_tail(400):
            if time.monotonic() > deadline:
                raise AssertionError("the criteria refresher did not finish")
            time.sleep(0.05)

    def cli_predicates(self, nct_id):
        """(rule_id, kind, polarity, span, low, high) of each predicate, as
        `trialmatch criteria --json --file <recorded record>` compiles it."""
        done = subprocess.run(
            [BINARY, "criteria", "--json",
             f"--rules={os.path.join(REPO, 'rules')}",
             f"--file={os.path.join(STUDIES_DIR, nct_id + '.json')}"],
            capture_output=True, text=True, timeout=300)
        self.assertEqual(done.returncode, 0, done.stderr)
        compiled = json.loads(done.stdout)
        return compiled, [
            (p["rule_id"], "PREDICATE_KIND_" + p["kind"],
             "POLARITY_" + p["polarity"],
             tuple(p["evidence"].get("span", (0, 0))), p.get("low"),
             p.get("high")) for p in compiled["predicates"]]

    def rpc_predicates(self, cs):
        c = S.criteria_pb2
        return [(p.rule_id, c.PredicateKind.Name(p.kind),
                 c.Polarity.Name(p.polarity),
                 (p.evidence.span.begin, p.evidence.span.end)
                 if p.evidence.source == c.EVIDENCE_SOURCE_CRITERIA_TEXT
                 else (0, 0),
                 p.low if p.HasField("low") else None,
                 p.high if p.HasField("high") else None)
                for p in cs.predicates]

    def assert_spans_point_into(self, cs, text):
        """Every criterion and text evidence span is a byte range of `text`
        (the recorded eligibilityCriteria) and the evidence is that slice."""
        c = S.criteria_pb2
        raw = text.encode("utf-8")
        for i, crit in enumerate(cs.criteria):
            self.assertLessEqual(0, crit.span.begin, i)
            self.assertLess(crit.span.begin, crit.span.end, i)
            self.assertLessEqual(crit.span.end, len(raw), i)
            for k in crit.predicates:
                self.assertEqual(cs.predicates[k].criterion, i)
        from_text = 0
        for p in cs.predicates:
            if p.evidence.source == c.EVIDENCE_SOURCE_STRUCTURED_FIELD:
                self.assertFalse(p.HasField("criterion"), p.rule_id)
                continue
            from_text += 1
            self.assertEqual(p.evidence.field, CRITERIA_FIELD)
            span = p.evidence.span
            self.assertLessEqual(0, span.begin)
            self.assertLess(span.begin, span.end)
            self.assertLessEqual(span.end, len(raw))
            self.assertEqual(raw[span.begin:span.end].decode("utf-8"),
                             p.evidence.text, p.rule_id)
            # Inside the criterion it was read from.
            crit = cs.criteria[p.criterion]
            self.assertLessEqual(crit.span.begin, span.begin, p.rule_id)
            self.assertLessEqual(span.end, crit.span.end, p.rule_id)
        self.assertGreater(from_text, 0)

    def test_get_study_criteria_of_imported_studies(self):
        seed = os.path.join(self.workdir, "seed")
        os.mkdir(seed)
        for nct_id in (STUDY, UTF8_STUDY):
            shutil.copy(os.path.join(STUDIES_DIR, nct_id + ".json"), seed)
        store = os.path.join(self.workdir, "imported.db")
        done = subprocess.run(
            [BINARY, "import", f"--store={store}",
             f"--rules={os.path.join(REPO, 'rules')}", seed],
            capture_output=True, text=True, timeout=300)
        self.assertEqual(done.returncode, 0, done.stderr)
        server = self.criteria_server(upstream=None, flags=["--offline"],
                                      store=store)
        c = S.criteria_pb2
        # `import` compiled the criteria of the RECRUITING study (ACTIVE);
        # the COMPLETED one (stored as LEFT_SCOPE) is compiled on the first
        # request and written back.
        for nct_id, origin in ((UTF8_STUDY, c.CRITERIA_ORIGIN_STORED),
                               (STUDY, c.CRITERIA_ORIGIN_COMPILED_ON_REQUEST),
                               (STUDY, c.CRITERIA_ORIGIN_STORED)):
            with self.subTest(nct_id):
                em = recorded(nct_id)["protocolSection"]["eligibilityModule"]
                r = self.get_criteria(server, nct_id)
                cs = r.criteria
                self.assertEqual(cs.nct_id, nct_id)
                self.assertEqual(r.origin, origin)
                self.assertGreater(r.compiled_at.seconds, 0)
                self.assertEqual(r.eligibility_criteria,
                                 em["eligibilityCriteria"])
                self.assert_spans_point_into(cs, em["eligibilityCriteria"])
                # The structured minimumAge, e.g. "18 Years", is a predicate.
                ages = [p for p in cs.predicates
                        if p.rule_id == "structured.minimum_age"]
                self.assertEqual(len(ages), 1)
                self.assertEqual(ages[0].evidence.text, em["minimumAge"])
                self.assertEqual(ages[0].kind, c.PREDICATE_KIND_AGE)
                self.assertEqual(ages[0].low,
                                 float(em["minimumAge"].split()[0]))
                # The server and the CLI compile the record alike.
                compiled, want = self.cli_predicates(nct_id)
                self.assertEqual(self.rpc_predicates(cs), want)
                self.assertEqual(cs.rules_version, compiled["rules_version"])
                self.assertEqual(len(cs.criteria), len(compiled["criteria"]))

        # The lab bounds of the UTF-8 study, read after "≥" (3 bytes each).
        cs = self.get_criteria(server, UTF8_STUDY).criteria
        text = recorded(UTF8_STUDY)["protocolSection"]["eligibilityModule"][
            "eligibilityCriteria"]
        platelets = [p for p in cs.predicates if p.quantity == "platelets"]
        self.assertTrue(platelets)
        self.assertIn("≥100", platelets[0].evidence.text)
        self.assertEqual(platelets[0].low, 100.0)
        self.assertEqual(platelets[0].polarity, c.POLARITY_INCLUSION)
        self.assertNotEqual(platelets[0].evidence.span.begin,
                            text.index(platelets[0].evidence.text))
        self.assertEqual(platelets[0].evidence.span.begin,
                         len(text[:text.index(platelets[0].evidence.text)]
                             .encode("utf-8")))

    def test_criteria_of_a_study_cached_by_get_study(self):
        server = self.criteria_server()
        self.wait_refreshed(server)  # the empty store's first pass is over
        c = S.criteria_pb2
        # Not in the local store yet: NOT_FOUND, and the upstream is not asked.
        details = self.assert_code(grpc.StatusCode.NOT_FOUND,
                                   self.get_criteria, server, STUDY)
        self.assertIn(STUDY, details)
        self.assertEqual(fake_count(FAKE, f"/api/v2/studies/{STUDY}"), 0)
        # GetStudy caches the record; its criteria are compiled on request,
        # written back, then served from the store.
        plain = self.get_study(server, STUDY)
        self.assertFalse(plain.HasField("criteria"))
        self.assertEqual(plain.criteria_origin, c.CRITERIA_ORIGIN_UNSPECIFIED)
        first = self.get_criteria(server, STUDY)
        self.assertEqual(first.origin, c.CRITERIA_ORIGIN_COMPILED_ON_REQUEST)
        second = self.get_criteria(server, STUDY)
        self.assertEqual(second.origin, c.CRITERIA_ORIGIN_STORED)
        self.assertEqual(second.criteria, first.criteria)
        self.assertEqual(second.eligibility_criteria,
                         recorded(STUDY)["protocolSection"][
                             "eligibilityModule"]["eligibilityCriteria"])

    def test_get_study_include_criteria(self):
        server = self.criteria_server()
        self.wait_refreshed(server)
        c = S.criteria_pb2
        # Fetched from the upstream and compiled in the same call.
        r = self.get_study(server, UTF8_STUDY, include_criteria=True)
        self.assertEqual(r.freshness.source, S.study_pb2.DATA_SOURCE_UPSTREAM)
        self.assertEqual(json.loads(r.study.record_json), recorded(UTF8_STUDY))
        self.assertEqual(r.criteria_origin,
                         c.CRITERIA_ORIGIN_COMPILED_ON_REQUEST)
        self.assertEqual(r.criteria.nct_id, UTF8_STUDY)
        self.assert_spans_point_into(r.criteria, r.study.eligibility.criteria)
        # Written back: the next reads come from the stored entry, the same.
        cached = self.get_study(server, UTF8_STUDY, include_criteria=True)
        self.assertEqual(cached.freshness.source,
                         S.study_pb2.DATA_SOURCE_CACHE)
        self.assertEqual(cached.criteria_origin, c.CRITERIA_ORIGIN_STORED)
        self.assertEqual(cached.criteria, r.criteria)
        alone = self.get_criteria(server, UTF8_STUDY)
        self.assertEqual(alone.origin, c.CRITERIA_ORIGIN_STORED)
        self.assertEqual(alone.criteria, r.criteria)
        # The criteria need the whole JSON record.
        for extra in (dict(format=S.study_pb2.FORMAT_CSV),
                      dict(fields=["NCTId"])):
            with self.subTest(extra):
                details = self.assert_code(
                    grpc.StatusCode.INVALID_ARGUMENT, self.get_study, server,
                    UTF8_STUDY, include_criteria=True, **extra)
                self.assertIn("include_criteria", details)

    def test_get_study_criteria_errors(self):
        server = self.criteria_server(upstream=None, flags=["--offline"])
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.get_criteria, server,
                         "NCT09999999")
        for bad in ("NCT123", "", "12345678", "NCT0428070X"):
            with self.subTest(bad):
                self.assert_code(grpc.StatusCode.INVALID_ARGUMENT,
                                 self.get_criteria, server, bad)
        self.assertEqual(server.health(), "SERVING")


# Recorded RECRUITING studies (two women-only breast cancer studies, an adult
# diabetes study, an asthma study) and a COMPLETED one.
MATCH_STUDIES = ["NCT02992574", "NCT03788213", "NCT03658512", "NCT04912596",
                 "NCT00001579"]
BREAST_WOMAN = json.dumps({
    "id": "bc-1", "age_years": 52, "sex": "female",
    "conditions": [{"text": "breast cancer",
                    "codes": [{"system": "icd10cm", "code": "C50.911"}]}]})
BREAST_MAN = json.dumps({
    "id": "bc-2", "age_years": 60, "sex": "male",
    "conditions": [{"text": "breast cancer",
                    "codes": [{"system": "icd10cm", "code": "C50.921"}]}]})
MATCHING = "trialmatch.v1.MatchingService"


class MatchingTest(E2ETestCase):
    """MatchingService on `trialmatch serve --offline` over a store seeded
    with `trialmatch import`, and `trialmatch match --server` against it."""

    def imported_store(self, ids):
        seed = os.path.join(self.workdir, "seed")
        os.mkdir(seed)
        for nct_id in ids:
            shutil.copy(os.path.join(STUDIES_DIR, nct_id + ".json"), seed)
        store = os.path.join(self.workdir, "imported.db")
        done = subprocess.run([BINARY, "import", f"--store={store}", seed],
                              capture_output=True, text=True, timeout=300)
        self.assertEqual(done.returncode, 0, done.stderr)
        return store

    def match_stub(self, server):
        return S.matching_service_pb2_grpc.MatchingServiceStub(server.channel)

    def test_match_patient_ranks_the_imported_studies(self):
        store = self.imported_store(MATCH_STUDIES)
        server = self.serve(upstream=None, flags=["--offline"], store=store)
        self.assertEqual(server.health(MATCHING), "SERVING")
        self.assertIn(MATCHING, tmctl.list_services(server.channel))
        pb = S.matching_service_pb2
        stub = self.match_stub(server)

        r = stub.MatchPatient(pb.MatchPatientRequest(
            patient=pb.PatientInput(profile_json=BREAST_WOMAN),
            options=pb.MatchOptions(include_explanations=True)),
            timeout=RPC_TIMEOUT)
        self.assertEqual(r.patient_id, "bc-1")
        self.assertEqual(r.snapshot.study_count, 4)  # the COMPLETED one left
        ids = [m.nct_id for m in r.results]
        self.assertIn("NCT02992574", ids)
        self.assertIn("NCT03788213", ids)
        self.assertNotIn("NCT03658512", ids)  # unrelated condition
        self.assertEqual([m.rank for m in r.results],
                         list(range(1, len(ids) + 1)))
        for m in r.results:
            self.assertIn(m.verdict, (pb.VERDICT_ELIGIBLE, pb.VERDICT_POSSIBLE))
            self.assertTrue(m.explanations)
            for e in m.explanations:
                self.assertNotEqual(e.status, pb.CRITERION_STATUS_UNSPECIFIED)

        # A man: the women-only studies are INELIGIBLE by the sex criterion.
        r = stub.MatchPatient(pb.MatchPatientRequest(
            patient=pb.PatientInput(profile_json=BREAST_MAN),
            options=pb.MatchOptions(verdicts=[pb.VERDICT_ELIGIBLE,
                                              pb.VERDICT_POSSIBLE,
                                              pb.VERDICT_INELIGIBLE])),
            timeout=RPC_TIMEOUT)
        by_id = {m.nct_id: m for m in r.results}
        for nct_id in ("NCT02992574", "NCT03788213"):
            m = by_id[nct_id]
            self.assertEqual(m.verdict, pb.VERDICT_INELIGIBLE)
            violated = [e for e in m.explanations
                        if e.outcome == pb.OUTCOME_VIOLATED]
            self.assertTrue(any(
                e.kind == S.criteria_pb2.PREDICATE_KIND_SEX and
                e.status == pb.CRITERION_STATUS_NOT_MET for e in violated))

        # Invalid input: INVALID_ARGUMENT naming the field, no values.
        details = self.assert_code(
            grpc.StatusCode.INVALID_ARGUMENT, stub.MatchPatient,
            pb.MatchPatientRequest(patient=pb.PatientInput(
                profile_json='{"id": "p", "age_years": 987}')),
            timeout=RPC_TIMEOUT)
        self.assertIn("age_years", details)
        self.assertNotIn("987", details)
        self.assert_code(grpc.StatusCode.INVALID_ARGUMENT, stub.MatchPatient,
                         pb.MatchPatientRequest(), timeout=RPC_TIMEOUT)
        self.assert_code(grpc.StatusCode.INVALID_ARGUMENT, stub.MatchPatient,
                         pb.MatchPatientRequest(
                             patient=pb.PatientInput(profile_json=BREAST_WOMAN),
                             options=pb.MatchOptions(top_k=-1)),
                         timeout=RPC_TIMEOUT)
        # Oversized: gRPC's 4 MiB receive limit.
        self.assert_code(grpc.StatusCode.RESOURCE_EXHAUSTED, stub.MatchPatient,
                         pb.MatchPatientRequest(patient=pb.PatientInput(
                             profile_json=" " * (5 << 20) + BREAST_WOMAN)),
                         timeout=RPC_TIMEOUT)

        # A stream with a bad item in the middle goes on, in order.
        requests = [
            pb.MatchPatientsRequest(correlation_id="a", patient=pb.PatientInput(
                profile_json=BREAST_WOMAN)),
            pb.MatchPatientsRequest(correlation_id="b", patient=pb.PatientInput(
                profile_json='{"id": "x", "age_years": '))] + [
            pb.MatchPatientsRequest(correlation_id=f"c{i}",
                                    patient=pb.PatientInput(
                                        profile_json=BREAST_MAN))
            for i in range(20)]
        responses = list(stub.MatchPatients(iter(requests),
                                            timeout=RPC_TIMEOUT))
        self.assertEqual([x.correlation_id for x in responses],
                         [x.correlation_id for x in requests])
        self.assertEqual([x.sequence for x in responses],
                         list(range(len(requests))))
        self.assertEqual(responses[0].match.patient_id, "bc-1")
        self.assertEqual(responses[1].error.code_name, "INVALID_ARGUMENT")
        self.assertTrue(all(x.match.patient_id == "bc-2"
                            for x in responses[2:]))

    def test_batch_cli_over_the_server_equals_the_local_run(self):
        store = self.imported_store(MATCH_STUDIES)
        server = self.serve(upstream=None, flags=["--offline"], store=store)
        patients = os.path.join(self.workdir, "patients.jsonl")
        with open(patients, "w") as f:
            for i in range(30):
                f.write((BREAST_WOMAN, BREAST_MAN, "{not json")[i % 3] + "\n")
        outputs = {}
        for mode, flag in (("remote", f"--server=127.0.0.1:{server.port}"),
                           ("local", f"--store={store}")):
            out = os.path.join(self.workdir, mode + ".jsonl")
            done = subprocess.run(
                [BINARY, "match", flag, f"--patients={patients}",
                 f"--out={out}", "--explain"],
                capture_output=True, text=True, timeout=300)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("30 patients, 20 matched, 10 failed", done.stderr)
            with open(out) as f:
                lines = [json.loads(line) for line in f]
            for line in lines:
                line.get("match", {}).pop("snapshot", None)
            outputs[mode] = lines
        self.assertEqual(len(outputs["remote"]), 30)
        self.assertEqual([x["position"] for x in outputs["remote"]],
                         list(range(1, 31)))
        self.assertEqual(outputs["remote"], outputs["local"])

    def test_empty_store_serves_an_empty_snapshot(self):
        server = self.serve(upstream=None, flags=["--offline"])
        self.assertEqual(server.health(MATCHING), "SERVING")
        pb = S.matching_service_pb2
        r = self.match_stub(server).MatchPatient(pb.MatchPatientRequest(
            patient=pb.PatientInput(profile_json=BREAST_WOMAN)),
            timeout=RPC_TIMEOUT)
        self.assertEqual(r.snapshot.study_count, 0)
        self.assertEqual(len(r.results), 0)


if __name__ == "__main__":
    unittest.main()
