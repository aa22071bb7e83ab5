"""Tests of the fake ClinicalTrials.gov API v2 (tests/fake_ctgov/fake_ctgov.py).

Run by ctest as `fake_ctgov_py` (label integration):
    TRIALMATCH_SHARED_DATA_DIR=<shared>/data /usr/bin/python3 -m unittest \
        -v test_fake_ctgov          (from tests/fake_ctgov/)
The recorded data must exist: the module fails (does not skip) without it.
Expected values come from the recorded files and studies_index.tsv, read here
independently of the fake's code.
"""

import base64
import csv
import gzip
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_ctgov_client import (SCRIPT, SpawnedFake, http_request,  # noqa: E402
                               shared_ctgov_dir)

DATA_DIR = shared_ctgov_dir()
FAKE = None
STUDIES = {}    # nct -> study JSON as recorded
INDEX = []      # rows of studies_index.tsv


def setUpModule():
    global FAKE
    studies_dir = os.path.join(DATA_DIR, "studies")
    if not os.path.isdir(studies_dir):
        raise RuntimeError(
            f"recorded data missing at {studies_dir}: set "
            "TRIALMATCH_SHARED_DATA_DIR to the shared data folder")
    for name in os.listdir(studies_dir):
        if name.endswith(".json"):
            with open(os.path.join(studies_dir, name), encoding="utf-8") as f:
                STUDIES[name[:-5]] = json.load(f)
    with open(os.path.join(DATA_DIR, "studies_index.tsv"),
              encoding="utf-8") as f:
        INDEX.extend(csv.DictReader(f, delimiter="\t"))
    FAKE = SpawnedFake(DATA_DIR, "--alias", "NCT00000001=NCT00000410").start()


def tearDownModule():
    if FAKE is not None:
        FAKE.stop()


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


def status_of(study):
    return study["protocolSection"]["statusModule"]["overallStatus"]


def last_update(study):
    return study["protocolSection"]["statusModule"][
        "lastUpdatePostDateStruct"]["date"]


def ids_of(page):
    return [s["protocolSection"]["identificationModule"]["nctId"]
            for s in page["studies"]]


def walk(params, max_pages=2000):
    """Follows nextPageToken; returns (pages, all ids in order)."""
    pages, ids, token = [], [], None
    for _ in range(max_pages):
        p = dict(params)
        if token:
            p["pageToken"] = token
        page = FAKE.get_json(q("/api/v2/studies", **p))
        pages.append(page)
        ids.extend(ids_of(page))
        token = page.get("nextPageToken")
        if not token:
            return pages, ids
    raise AssertionError("paging did not end")


class FakeTestCase(unittest.TestCase):
    def setUp(self):
        FAKE.control("reset")


class StartupTest(FakeTestCase):
    def test_version_reports_the_corpus_data_date(self):
        newest = max(row["versionHolder"] for row in INDEX)
        self.assertEqual(FAKE.get_json("/api/v2/version"),
                         {"apiVersion": "2.0.3",
                          "dataTimestamp": newest + "T00:00:00"})

    def test_missing_data_dir_fails_without_listening(self):
        proc = subprocess.run(
            [sys.executable, SCRIPT, "--data-dir", "/nonexistent/ctgov_v2",
             "--port", "0"], capture_output=True, timeout=30)
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stdout, b"")
        self.assertIn(b"no studies directory", proc.stderr)

    def test_exits_by_itself_after_max_lifetime(self):
        fake = SpawnedFake(DATA_DIR, max_lifetime=1).start()
        try:
            rc = fake.proc.wait(30)
        finally:
            fake.stop()
        self.assertEqual(rc, 0)

    def test_sigterm_stops_it_and_flags_configure_faults(self):
        fake = SpawnedFake(DATA_DIR, "--fault",
                           "path=/api/v2/version,kind=503,count=1,"
                           "retry_after=7",
                           "--data-timestamp", "2030-01-02T03:04:05").start()
        try:
            status, headers, _ = fake.get("/api/v2/version")
            self.assertEqual(status, 503)
            self.assertEqual(headers["retry-after"], "7")
            self.assertEqual(fake.get_json("/api/v2/version")["dataTimestamp"],
                             "2030-01-02T03:04:05")
            fake.proc.send_signal(signal.SIGTERM)
            self.assertEqual(fake.proc.wait(15), 0)
        finally:
            fake.stop()

    def test_importable_in_process(self):
        import fake_ctgov
        app = fake_ctgov.FakeCtgov(DATA_DIR, data_timestamp="2031-01-01T00:00:00")
        with fake_ctgov.FakeCtgovServer(app) as server:
            status, _, body = http_request(server.port, "GET",
                                           "/api/v2/version")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["dataTimestamp"],
                         "2031-01-01T00:00:00")


class PagingTest(FakeTestCase):
    def test_every_study_once_for_several_page_sizes(self):
        for size in (1000, 137, 10):
            with self.subTest(pageSize=size):
                pages, ids = walk({"pageSize": size, "fields": "NCTId"})
                self.assertEqual(len(ids), len(STUDIES))
                self.assertEqual(set(ids), set(STUDIES))
                self.assertEqual(len(pages), -(-len(STUDIES) // size))
                self.assertTrue(all(len(ids_of(p)) == size
                                    for p in pages[:-1]))
                self.assertNotIn("nextPageToken", pages[-1])
                self.assertEqual(ids, sorted(ids))  # default: NCT id order

    def test_full_studies_are_served_as_recorded(self):
        _, ids = walk({"pageSize": 1000})
        pages, _ = walk({"pageSize": 1000})
        served = {i: s for p in pages for i, s in zip(ids_of(p), p["studies"])}
        self.assertEqual(len(served), len(STUDIES))
        for nct, study in STUDIES.items():
            self.assertEqual(served[nct], study, nct)

    def test_count_total_only_on_the_first_page(self):
        first = FAKE.get_json(q("/api/v2/studies", pageSize=5,
                                countTotal="true", fields="NCTId"))
        self.assertEqual(first["totalCount"], len(STUDIES))
        second = FAKE.get_json(q("/api/v2/studies", pageSize=5,
                                 countTotal="true", fields="NCTId",
                                 pageToken=first["nextPageToken"]))
        self.assertNotIn("totalCount", second)
        self.assertNotIn("totalCount", FAKE.get_json(
            q("/api/v2/studies", pageSize=5, fields="NCTId")))

    def test_page_size_zero_means_default_and_large_is_coerced(self):
        self.assertEqual(len(FAKE.get_json(q(
            "/api/v2/studies", pageSize=0, fields="NCTId"))["studies"]), 10)
        self.assertEqual(len(FAKE.get_json(
            q("/api/v2/studies", fields="NCTId"))["studies"]), 10)
        self.assertEqual(len(FAKE.get_json(q(
            "/api/v2/studies", pageSize=5000, fields="NCTId"))["studies"]),
            1000)

    def test_bad_page_size_is_400(self):
        for value in ("-1", "ten", "1.5"):
            status, headers, body = FAKE.get(q("/api/v2/studies",
                                               pageSize=value))
            self.assertEqual(status, 400, value)
            self.assertTrue(headers["content-type"].startswith("text/plain"))
            self.assertIn(b"pageSize", body)

    def test_garbage_and_foreign_page_tokens_are_400(self):
        first = FAKE.get_json(q("/api/v2/studies", pageSize=3,
                                fields="NCTId"))
        token = first["nextPageToken"]
        for bad in ("garbage", "!!!", token[:-4],
                    base64.urlsafe_b64encode(b'{"q":"x","k":["NCT1"]}')
                    .decode()):
            status, _, body = FAKE.get(q("/api/v2/studies", pageSize=3,
                                         fields="NCTId", pageToken=bad))
            self.assertEqual(status, 400, bad)
            self.assertIn(b"pageToken", body)
        # Same token, different query: refused.
        status, _, _ = FAKE.get(q("/api/v2/studies", pageSize=3,
                                  fields="NCTId", pageToken=token,
                                  **{"filter.overallStatus": "RECRUITING"}))
        self.assertEqual(status, 400)
        # pageSize and countTotal may change between pages.
        status, _, _ = FAKE.get(q("/api/v2/studies", pageSize=50,
                                  countTotal="true", fields="NCTId",
                                  pageToken=token))
        self.assertEqual(status, 200)

    def test_unknown_parameter_is_400_with_the_api_message(self):
        status, _, body = FAKE.get(q("/api/v2/studies",
                                     **{"filter.phase": "PHASE3"}))
        self.assertEqual(status, 400)
        self.assertEqual(body, b"`filter.phase` is unknown parameter")

    def test_paging_stays_consistent_when_a_study_is_deleted_midway(self):
        first = FAKE.get_json(q("/api/v2/studies", pageSize=100,
                                fields="NCTId"))
        seen = ids_of(first)
        unseen = sorted(set(STUDIES) - set(seen))
        FAKE.control("studies/delete", {"nctId": unseen[0]})
        # The next pages continue after the last study seen (a cursor, not an
        # offset): nothing is skipped or repeated.
        token, ids = first["nextPageToken"], list(seen)
        while token:
            page = FAKE.get_json(q("/api/v2/studies", pageSize=100,
                                   fields="NCTId", pageToken=token))
            ids.extend(ids_of(page))
            token = page.get("nextPageToken")
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(set(ids), set(STUDIES) - {unseen[0]})


class FilterTest(FakeTestCase):
    def count_in_index(self, *statuses):
        return sum(1 for row in INDEX if row["overallStatus"] in statuses)

    def test_status_counts_match_the_index(self):
        self.assertEqual(self.count_in_index("RECRUITING"), 512)
        self.assertEqual(self.count_in_index("NOT_YET_RECRUITING"), 102)
        for value, statuses in (
                ("RECRUITING", ("RECRUITING",)),
                ("NOT_YET_RECRUITING", ("NOT_YET_RECRUITING",)),
                ("RECRUITING,NOT_YET_RECRUITING",
                 ("RECRUITING", "NOT_YET_RECRUITING")),
                ("RECRUITING|NOT_YET_RECRUITING",
                 ("RECRUITING", "NOT_YET_RECRUITING"))):
            with self.subTest(value=value):
                pages, ids = walk({"filter.overallStatus": value,
                                   "pageSize": 200, "countTotal": "true",
                                   "fields": "NCTId,OverallStatus"})
                expected = self.count_in_index(*statuses)
                self.assertEqual(len(ids), expected)
                self.assertEqual(pages[0]["totalCount"], expected)
                self.assertTrue(all(status_of(STUDIES[i]) in statuses
                                    for i in ids))

    def test_unknown_status_is_400(self):
        status, _, body = FAKE.get(q("/api/v2/studies", **{
            "filter.overallStatus": "RECRUITING,RECRUITNG"}))
        self.assertEqual(status, 400)
        self.assertIn(b"RECRUITNG", body)

    def test_filter_ids(self):
        wanted = sorted(STUDIES)[::300]
        # Lower case, without leading zeros, comma and pipe separated.
        mangled = [wanted[0].lower(), "NCT" + wanted[1][3:].lstrip("0")]
        value = ",".join(mangled) + "|" + "|".join(wanted[2:])
        _, ids = walk({"filter.ids": value, "fields": "NCTId"})
        self.assertEqual(ids, wanted)
        status, _, _ = FAKE.get(q("/api/v2/studies",
                                  **{"filter.ids": "NCT1,XYZ"}))
        self.assertEqual(status, 400)

    def test_filter_ids_matches_aliases(self):
        nct, study = next((n, s) for n, s in sorted(STUDIES.items())
                          if s["protocolSection"]["identificationModule"]
                          .get("nctIdAliases"))
        alias = study["protocolSection"]["identificationModule"][
            "nctIdAliases"][0]
        _, ids = walk({"filter.ids": alias, "fields": "NCTId"})
        self.assertEqual(ids, [nct])

    def test_last_update_post_date_range(self):
        for lo, hi in (("2025-01-01", "2025-06-30"), ("MIN", "2015-12-31"),
                       ("2026-03-01", "MAX")):
            with self.subTest(lo=lo, hi=hi):
                expected = sorted(
                    n for n, s in STUDIES.items()
                    if (lo == "MIN" or last_update(s) >= lo)
                    and (hi == "MAX" or last_update(s) <= hi))
                self.assertGreater(len(expected), 0)
                _, ids = walk({
                    "filter.advanced":
                        f"AREA[LastUpdatePostDate]RANGE[{lo}, {hi}]",
                    "pageSize": 100, "fields": "NCTId"})
                self.assertEqual(ids, expected)

    def test_advanced_combines_with_status(self):
        expected = sorted(n for n, s in STUDIES.items()
                          if last_update(s) >= "2025-01-01"
                          and status_of(s) == "RECRUITING")
        _, ids = walk({
            "filter.advanced":
                "AREA[LastUpdatePostDate]RANGE[2025-01-01,MAX] AND "
                "AREA[OverallStatus]RECRUITING",
            "pageSize": 100, "fields": "NCTId"})
        self.assertEqual(ids, expected)

    def test_bad_advanced_expression_is_400(self):
        for expr in ("AREA[NoSuchPiece]x", "AREA[LastUpdatePostDate]RANGE[a,b]",
                     "(unclosed", "EXPAND[Concept]cancer"):
            status, _, _ = FAKE.get(q("/api/v2/studies",
                                      **{"filter.advanced": expr}))
            self.assertEqual(status, 400, expr)

    def test_query_cond_finds_studies_by_condition(self):
        def conditions(s):
            return s["protocolSection"].get("conditionsModule", {}).get(
                "conditions", [])
        # Documented matching: the word at the start of a word, any case
        # (so "PreDiabetes" or "Type1diabetes" are not hits).
        word = re.compile(r"(?<![0-9a-z_])diabetes", re.IGNORECASE)
        must = {n for n, s in STUDIES.items()
                if any(word.search(c) for c in conditions(s))}
        _, ids = walk({"query.cond": "Diabetes", "pageSize": 500,
                       "fields": "NCTId"})
        self.assertGreater(len(must), 10)
        self.assertTrue(must <= set(ids))
        for nct in ids:  # every hit mentions it somewhere in the study
            self.assertIn("diabet", json.dumps(STUDIES[nct]).lower(), nct)

    def test_query_term_intr_titles_spons(self):
        study = STUDIES[sorted(STUDIES)[0]]
        ps = study["protocolSection"]
        cases = {
            "query.term": ps["identificationModule"]["nctId"],
            "query.titles": ps["identificationModule"]["briefTitle"],
            "query.spons": ps["sponsorCollaboratorsModule"]["leadSponsor"][
                "name"],
            "query.intr": ps["armsInterventionsModule"]["interventions"][0][
                "name"],
        }
        for param, value in cases.items():
            with self.subTest(param=param):
                phrase = '"' + value.replace('"', "") + '"'
                _, ids = walk({param: phrase, "pageSize": 500,
                               "fields": "NCTId"})
                self.assertIn(ps["identificationModule"]["nctId"], ids)
                self.assertLess(len(ids), len(STUDIES))

    def test_query_with_only_nct_ids_ignores_filters(self):
        nct = next(n for n, s in sorted(STUDIES.items())
                   if status_of(s) == "COMPLETED")
        _, ids = walk({"query.term": nct, "fields": "NCTId",
                       "filter.overallStatus": "RECRUITING"})
        self.assertEqual(ids, [nct])

    def test_geo_distance_filter(self):
        # Studies with a site within 50 km of Boston, computed here.
        from math import asin, cos, radians, sin, sqrt

        def km(a, b, c, d):
            h = (sin(radians(c - a) / 2) ** 2 + cos(radians(a))
                 * cos(radians(c)) * sin(radians(d - b) / 2) ** 2)
            return 2 * 6371.0088 * asin(sqrt(h))
        expected = sorted(
            n for n, s in STUDIES.items()
            if any("geoPoint" in loc and km(42.36, -71.06,
                                           loc["geoPoint"]["lat"],
                                           loc["geoPoint"]["lon"]) <= 50
                   for loc in s["protocolSection"].get(
                       "contactsLocationsModule", {}).get("locations", [])))
        self.assertGreater(len(expected), 0)
        _, ids = walk({"filter.geo": "distance(42.36,-71.06,50km)",
                       "pageSize": 500, "fields": "NCTId"})
        self.assertEqual(ids, expected)


class SortTest(FakeTestCase):
    def dates(self, sort):
        pages, ids = walk({"sort": sort, "pageSize": 100,
                           "fields": "NCTId,LastUpdatePostDate"})
        self.assertEqual(sorted(ids), sorted(STUDIES))
        self.assertEqual(len(set(ids)), len(ids))
        return [last_update(STUDIES[i]) for i in ids], ids

    def test_last_update_post_date_desc_by_default(self):
        dates, _ = self.dates("LastUpdatePostDate")
        self.assertEqual(dates, sorted(dates, reverse=True))
        self.assertEqual(self.dates("LastUpdatePostDate:desc")[0], dates)

    def test_last_update_post_date_asc(self):
        dates, ids = self.dates("LastUpdatePostDate:asc")
        self.assertEqual(dates, sorted(dates))
        # Ties are broken by NCT id, so the order is fully deterministic.
        self.assertEqual(ids, sorted(STUDIES, key=lambda n: (
            last_update(STUDIES[n]), n)))

    def test_text_fields_cannot_sort(self):
        status, _, _ = FAKE.get(q("/api/v2/studies", sort="BriefTitle"))
        self.assertEqual(status, 400)


class FieldsTest(FakeTestCase):
    def page(self, fields, ids):
        return FAKE.get_json(q("/api/v2/studies", fields=fields,
                               **{"filter.ids": ",".join(ids)}))["studies"]

    def test_nct_id_only(self):
        ids = sorted(STUDIES)[:5]
        self.assertEqual(self.page("NCTId", ids), [
            {"protocolSection": {"identificationModule": {"nctId": i}}}
            for i in ids])

    def test_module_names_and_paths(self):
        ids = sorted(STUDIES)[10:13]
        for fields in ("IdentificationModule",
                       "protocolSection.identificationModule",
                       "identificationmodule"):
            with self.subTest(fields=fields):
                self.assertEqual(self.page(fields, ids), [
                    {"protocolSection": {"identificationModule": STUDIES[i][
                        "protocolSection"]["identificationModule"]}}
                    for i in ids])
        got = self.page("EligibilityModule|HasResults", ids)
        self.assertEqual(got, [
            {"protocolSection": {"eligibilityModule": STUDIES[i][
                "protocolSection"]["eligibilityModule"]},
             "hasResults": STUDIES[i]["hasResults"]} for i in ids])

    def test_leaf_fields_inside_lists(self):
        nct = next(n for n, s in sorted(STUDIES.items())
                   if len(s["protocolSection"].get(
                       "contactsLocationsModule", {}).get("locations", []))
                   > 2)
        got = FAKE.get_json(q(f"/api/v2/studies/{nct}",
                              fields="LocationCity,NCTId"))
        locations = STUDIES[nct]["protocolSection"]["contactsLocationsModule"][
            "locations"]
        self.assertEqual(got["protocolSection"]["contactsLocationsModule"], {
            "locations": [{"city": loc["city"]} for loc in locations
                          if "city" in loc]})

    def test_search_area_names_expand_to_their_pieces(self):
        nct = sorted(STUDIES)[0]
        got = FAKE.get_json(q(f"/api/v2/studies/{nct}",
                              fields="ConditionSearch"))
        self.assertIn("conditionsModule", got["protocolSection"])
        self.assertNotIn("eligibilityModule", got["protocolSection"])

    def test_unknown_field_is_400(self):
        for path in (q("/api/v2/studies", fields="NoSuchField"),
                     q("/api/v2/studies", fields=""),
                     q(f"/api/v2/studies/{sorted(STUDIES)[0]}",
                       fields="NCTId,Bogus")):
            status, _, body = FAKE.get(path)
            self.assertEqual(status, 400, path)


class CsvTest(FakeTestCase):
    def test_csv_pages_headers_and_tokens(self):
        params = {"format": "csv", "pageSize": 400, "countTotal": "true",
                  "fields": "NCT Number,Study Status,Last Update Posted",
                  "filter.overallStatus": "RECRUITING"}
        status, headers, body = FAKE.get(q("/api/v2/studies", **params))
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/csv"))
        self.assertEqual(headers["x-total-count"], "512")
        rows = list(csv.reader(io.StringIO(body.decode())))
        self.assertEqual(rows[0], ["NCT Number", "Study Status",
                                   "Last Update Posted"])
        self.assertEqual(len(rows), 401)
        params["pageToken"] = headers["x-next-page-token"]
        status, headers2, body2 = FAKE.get(q("/api/v2/studies", **params))
        rows2 = list(csv.reader(io.StringIO(body2.decode())))
        self.assertEqual(len(rows2), 112)  # no header row on later pages
        self.assertNotIn("x-next-page-token", headers2)
        self.assertNotIn("x-total-count", headers2)
        for row in rows[1:] + rows2:
            self.assertEqual(row[1], "RECRUITING")
            self.assertEqual(row[2], last_update(STUDIES[row[0]]))
        self.assertEqual(len({r[0] for r in rows[1:] + rows2}), 512)

    def test_default_columns_and_bad_column(self):
        status, _, body = FAKE.get(q("/api/v2/studies", format="csv",
                                     pageSize=1))
        header = next(csv.reader(io.StringIO(body.decode())))
        self.assertEqual(len(header), 30)
        self.assertEqual(header[:3], ["NCT Number", "Study Title",
                                      "Study URL"])
        status, _, body = FAKE.get(q("/api/v2/studies", format="csv",
                                     fields="NCTId"))
        self.assertEqual(status, 400)
        self.assertIn(b"invalid CSV column name: 'NCTId'", body)


def leaf_paths(value, prefix=()):
    """Key paths of the leaves of a JSON value (list indexes dropped)."""
    if isinstance(value, dict):
        return set().union(set(), *(leaf_paths(v, prefix + (k,))
                                    for k, v in value.items()))
    if isinstance(value, list):
        return set().union(set(), *(leaf_paths(v, prefix) for v in value))
    return {prefix}


class RecordedRequestsTest(FakeTestCase):
    """The requests biomcp sent to the live API (capture-receipts.json),
    replayed: the fake accepts them and answers in the live API's shape."""

    def test_replayed_requests_have_the_live_shape(self):
        folder = os.path.join(DATA_DIR, "search_responses", "biomcp")
        with open(os.path.join(folder, "capture-receipts.json"),
                  encoding="utf-8") as f:
            entries = [e for e in json.load(f)["entries"]
                       if e["path"].startswith("ctgov/")]
        self.assertGreaterEqual(len(entries), 10)
        live_paths = {}  # fields= value -> leaf paths the live API sent
        for entry in entries:
            url = entry["receipt"]["request"]
            fields = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)[
                "fields"][0]
            with open(os.path.join(folder, os.path.basename(entry["path"])),
                      encoding="utf-8") as f:
                live = json.load(f)
            for study in live.get("studies", [live]):
                live_paths.setdefault(fields, set()).update(leaf_paths(study))
        answered = 0
        for entry in entries:
            url = entry["receipt"]["request"]
            split = urllib.parse.urlsplit(url)
            params = [(k, v) for k, v in urllib.parse.parse_qsl(split.query)
                      if k != "pageToken"]  # a live token means nothing here
            path = split.path
            if path.startswith("/api/v2/studies/"):  # not in our corpus
                path = "/api/v2/studies/" + sorted(STUDIES)[2]
            with self.subTest(request=url):
                status, _, body = FAKE.get(
                    path + "?" + urllib.parse.urlencode(params))
                self.assertEqual(status, 200, body[:200])
                page = json.loads(body)
                studies = page.get("studies", [page])
                answered += len(studies)
                got = set().union(set(), *(leaf_paths(s) for s in studies))
                fields = dict(params)["fields"]
                self.assertLessEqual(got, live_paths[fields])
        self.assertGreater(answered, 5)


class SingleStudyTest(FakeTestCase):
    def test_study_as_recorded(self):
        for nct in sorted(STUDIES)[::250]:
            self.assertEqual(FAKE.get_json(f"/api/v2/studies/{nct}"),
                             STUDIES[nct])
        nct = sorted(STUDIES)[0]
        self.assertEqual(FAKE.get_json(f"/api/v2/studies/{nct.lower()}"),
                         STUDIES[nct])

    def test_not_found_and_malformed(self):
        status, headers, body = FAKE.get("/api/v2/studies/NCT09999999")
        self.assertEqual(status, 404)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        self.assertIn(b"NCT09999999", body)
        for bad in ("NCT", "XYZ123", "NCT123456789", "NCT0000000A"):
            self.assertEqual(FAKE.get(f"/api/v2/studies/{bad}")[0], 400, bad)

    def test_alias_from_flag_control_and_data_redirects(self):
        status, headers, _ = FAKE.get("/api/v2/studies/NCT00000001?fields=NCTId")
        self.assertEqual(status, 301)
        self.assertEqual(headers["location"],
                         f"http://127.0.0.1:{FAKE.port}/api/v2/studies/"
                         "NCT00000410?fields=NCTId")
        target = sorted(STUDIES)[5]
        FAKE.control("aliases", {"from": "NCT00000002", "to": target})
        status, headers, _ = FAKE.get("/api/v2/studies/NCT00000002")
        self.assertEqual(status, 301)
        self.assertTrue(headers["location"].endswith("/studies/" + target))
        nct, study = next((n, s) for n, s in sorted(STUDIES.items())
                          if s["protocolSection"]["identificationModule"]
                          .get("nctIdAliases"))
        alias = study["protocolSection"]["identificationModule"][
            "nctIdAliases"][0]
        status, headers, _ = FAKE.get(f"/api/v2/studies/{alias}")
        self.assertEqual(status, 301)
        self.assertTrue(headers["location"].endswith("/studies/" + nct))
        FAKE.control("reset")
        self.assertEqual(FAKE.get("/api/v2/studies/NCT00000002")[0], 404)

    def test_single_study_csv_and_unknown_param(self):
        nct = sorted(STUDIES)[0]
        status, _, body = FAKE.get(q(f"/api/v2/studies/{nct}", format="csv",
                                     fields="NCT Number,Study Status"))
        self.assertEqual(status, 200)
        self.assertEqual(body.decode().splitlines(), [
            "NCT Number,Study Status", f"{nct},{status_of(STUDIES[nct])}"])
        self.assertEqual(FAKE.get(q(f"/api/v2/studies/{nct}",
                                    pageSize=3))[0], 400)


class OtherEndpointsTest(FakeTestCase):
    def load(self, name):
        with open(os.path.join(DATA_DIR, "endpoints", name),
                  encoding="utf-8") as f:
            return json.load(f)

    def test_metadata_and_search_areas_are_the_recorded_ones(self):
        self.assertEqual(FAKE.get_json("/api/v2/studies/metadata"),
                         self.load("studies_metadata_2025-05_metamonk.json"))
        self.assertEqual(FAKE.get_json("/api/v2/studies/search-areas"),
                         self.load("studies_search-areas_2025-05_metamonk"
                                   ".json"))

    def test_enums_in_the_documented_shape(self):
        enums = FAKE.get_json("/api/v2/studies/enums")
        by_type = {e["type"]: e for e in enums}
        status = by_type["Status"]
        self.assertEqual(set(status["pieces"]), {"OverallStatus",
                                                 "LastKnownStatus"})
        values = {v["value"]: v["legacyValue"] for v in status["values"]}
        self.assertEqual(values["RECRUITING"], "Recruiting")
        self.assertEqual(values["ACTIVE_NOT_RECRUITING"],
                         "Active, not recruiting")
        self.assertEqual(by_type["Phase"]["pieces"], ["Phase"])
        self.assertIn({"value": "EARLY_PHASE1", "legacyValue": "Early Phase 1"},
                      by_type["Phase"]["values"])
        for enum in enums:
            self.assertEqual(set(enum), {"type", "pieces", "values"})
            self.assertTrue(enum["pieces"] and enum["values"])
        # Every status in the corpus is a value of the Status enum.
        corpus = {status_of(s) for s in STUDIES.values()}
        self.assertTrue(corpus <= set(values))
        self.assertGreaterEqual(len(enums), 40)

    def test_size_stats_computed_from_the_corpus(self):
        stats = FAKE.get_json("/api/v2/stats/size")
        self.assertEqual(stats["totalStudies"], len(STUDIES))
        sizes = {n: len(json.dumps(s, ensure_ascii=False,
                                   separators=(",", ":")).encode())
                 for n, s in STUDIES.items()}
        largest = max(sizes, key=sizes.get)
        self.assertEqual(stats["largestStudies"][0],
                         {"id": largest, "sizeBytes": sizes[largest]})
        self.assertEqual(stats["averageSizeBytes"],
                         sum(sizes.values()) // len(sizes))
        self.assertEqual(sum(r["studiesCount"] for r in stats["ranges"]),
                         len(STUDIES))
        FAKE.control("studies/delete", {"nctId": largest})
        self.assertEqual(FAKE.get_json("/api/v2/stats/size")["totalStudies"],
                         len(STUDIES) - 1)

    def test_unknown_path_is_404(self):
        self.assertEqual(FAKE.get("/api/v2/nothing")[0], 404)
        self.assertEqual(FAKE.get("/elsewhere")[0], 404)


class GzipTest(FakeTestCase):
    def test_gzip_when_asked(self):
        path = q("/api/v2/studies", pageSize=20)
        _, plain_headers, plain = FAKE.get(path)
        self.assertNotIn("content-encoding", plain_headers)
        status, headers, body = FAKE.get(
            path, headers={"Accept-Encoding": "deflate, gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-encoding"], "gzip")
        self.assertEqual(int(headers["content-length"]), len(body))
        self.assertLess(len(body), len(plain))
        self.assertEqual(gzip.decompress(body), plain)
        _, headers, _ = FAKE.get(path, headers={"Accept-Encoding": "gzip;q=0"})
        self.assertNotIn("content-encoding", headers)


class FaultTest(FakeTestCase):
    def test_429_with_retry_after_then_recovers(self):
        FAKE.control("faults", {"path": "/api/v2/studies", "kind": "429",
                                "count": 2, "retry_after": 1})
        path = q("/api/v2/studies", pageSize=1, fields="NCTId")
        for _ in range(2):
            status, headers, _ = FAKE.get(path)
            self.assertEqual(status, 429)
            self.assertEqual(headers["retry-after"], "1")
        self.assertEqual(FAKE.get(path)[0], 200)
        self.assertEqual(FAKE.get("/api/v2/version")[0], 200)
        stats = FAKE.stats("/api/v2/studies")
        self.assertEqual([r["status"] for r in stats["requests"]],
                         [429, 429, 200])
        self.assertEqual(stats["total"], 3)

    def test_5xx_statuses(self):
        for kind in ("500", "502", "503", "504"):
            FAKE.control("faults", {"kind": kind})
            self.assertEqual(FAKE.get("/api/v2/version")[0], int(kind))
            self.assertEqual(FAKE.get("/api/v2/version")[0], 200)
        FAKE.control("faults", {"kind": "status", "status": 418})
        self.assertEqual(FAKE.get("/api/v2/version")[0], 418)

    def test_faults_are_scoped_by_path_prefix(self):
        FAKE.control("faults", {"path": "/api/v2/studies/NCT", "kind": "503",
                                "count": 5})
        self.assertEqual(FAKE.get("/api/v2/studies/metadata")[0], 200)
        self.assertEqual(FAKE.get(f"/api/v2/studies/{sorted(STUDIES)[0]}")[0],
                         503)

    def test_skip_lets_the_first_requests_through(self):
        FAKE.control("faults", {"kind": "500", "skip": 2, "count": 1})
        self.assertEqual([FAKE.get("/api/v2/version")[0] for _ in range(4)],
                         [200, 200, 500, 200])

    def test_connection_reset(self):
        FAKE.control("faults", {"kind": "reset"})
        with self.assertRaises(ConnectionResetError):
            FAKE.get("/api/v2/version")
        self.assertEqual(FAKE.get("/api/v2/version")[0], 200)

    def test_stall_sends_headers_then_nothing(self):
        FAKE.control("faults", {"kind": "stall", "stall_seconds": 3,
                                "after_bytes": 10})
        conn = http.client.HTTPConnection("127.0.0.1", FAKE.port, timeout=1)
        try:
            conn.request("GET", q("/api/v2/studies", pageSize=50))
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertGreater(int(resp.getheader("Content-Length")), 10)
            start = time.monotonic()
            with self.assertRaises(socket.timeout):
                resp.read()
            self.assertLess(time.monotonic() - start, 2.5)
        finally:
            conn.close()
        self.assertEqual(FAKE.get("/api/v2/version")[0], 200)

    def test_truncated_body(self):
        FAKE.control("faults", {"kind": "truncate"})
        with self.assertRaises(http.client.IncompleteRead):
            FAKE.get(q("/api/v2/studies", pageSize=50))

    def test_malformed_json_and_html_with_200(self):
        FAKE.control("faults", {"kind": "malformed_json"})
        status, headers, body = FAKE.get("/api/v2/studies")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        with self.assertRaises(ValueError):
            json.loads(body)
        FAKE.control("faults", {"kind": "html"})
        status, headers, body = FAKE.get("/api/v2/studies")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        self.assertIn(b"<html>", body)

    def test_looping_page_token(self):
        first = FAKE.get_json(q("/api/v2/studies", pageSize=5, fields="NCTId"))
        FAKE.control("faults", {"path": "/api/v2/studies", "kind": "loop_token",
                                "count": 1})
        second = FAKE.get_json(q("/api/v2/studies", pageSize=5,
                                 fields="NCTId",
                                 pageToken=first["nextPageToken"]))
        self.assertEqual(second["nextPageToken"], first["nextPageToken"])
        # On a first page the token leads back to the start.
        FAKE.control("faults", {"path": "/api/v2/studies", "kind": "loop_token",
                                "count": 1})
        looped = FAKE.get_json(q("/api/v2/studies", pageSize=5,
                                 fields="NCTId"))
        again = FAKE.get_json(q("/api/v2/studies", pageSize=5, fields="NCTId",
                                pageToken=looped["nextPageToken"]))
        self.assertEqual(ids_of(again), ids_of(first))

    def test_latency(self):
        FAKE.control("faults", {"kind": "latency", "latency_ms": 400,
                                "count": 1})
        start = time.monotonic()
        self.assertEqual(FAKE.get("/api/v2/version")[0], 200)
        self.assertGreaterEqual(time.monotonic() - start, 0.4)

    def test_probability_is_repeatable_with_a_seed(self):
        def pattern():
            FAKE.control("reset")
            FAKE.control("faults", {"kind": "503", "probability": 0.5,
                                    "seed": 42})
            return [FAKE.get("/api/v2/version")[0] for _ in range(40)]
        first = pattern()
        self.assertEqual(first, pattern())
        self.assertTrue(10 <= first.count(503) <= 30, first)
        self.assertEqual(set(first), {200, 503})

    def test_bad_fault_specs_are_rejected(self):
        for spec in ({"kind": "explode"}, {"kind": "429", "count": 0},
                     {"kind": "latency"}, {"kind": "status"},
                     {"kind": "429", "bogus": 1}):
            status, _, _ = FAKE.request("POST", "/__control/faults",
                                        json.dumps(spec).encode())
            self.assertEqual(status, 400, spec)


class ControlTest(FakeTestCase):
    def recruiting_count(self):
        return FAKE.get_json(q("/api/v2/studies", pageSize=1, fields="NCTId",
                               countTotal="true",
                               **{"filter.overallStatus": "RECRUITING"}))[
            "totalCount"]

    def test_patch_changes_status_and_touch_bumps_the_date(self):
        nct = next(n for n, s in sorted(STUDIES.items())
                   if status_of(s) == "RECRUITING")
        FAKE.control("studies/patch", {
            "nctId": nct, "touch": "2099-01-02",
            "set": {"protocolSection.statusModule.overallStatus":
                    "COMPLETED"}})
        self.assertEqual(self.recruiting_count(), 511)
        study = FAKE.get_json(f"/api/v2/studies/{nct}")
        self.assertEqual(status_of(study), "COMPLETED")
        self.assertEqual(last_update(study), "2099-01-02")
        _, ids = walk({"filter.advanced":
                       "AREA[LastUpdatePostDate]RANGE[2099-01-01,MAX]",
                       "fields": "NCTId"})
        self.assertEqual(ids, [nct])
        newest = FAKE.get_json(q("/api/v2/studies", pageSize=1,
                                 sort="LastUpdatePostDate", fields="NCTId"))
        self.assertEqual(ids_of(newest), [nct])
        FAKE.control("reset")
        self.assertEqual(self.recruiting_count(), 512)
        self.assertEqual(FAKE.get_json(f"/api/v2/studies/{nct}"),
                         STUDIES[nct])

    def test_delete_and_put(self):
        nct = sorted(STUDIES)[3]
        FAKE.control("studies/delete", {"nctId": nct})
        self.assertEqual(FAKE.get(f"/api/v2/studies/{nct}")[0], 404)
        self.assertEqual(len(walk({"pageSize": 1000, "fields": "NCTId"})[1]),
                         len(STUDIES) - 1)
        status, _, _ = FAKE.request("POST", "/__control/studies/delete",
                                    json.dumps({"nctId": nct}).encode())
        self.assertEqual(status, 404)
        new = json.loads(json.dumps(STUDIES[nct]))
        new["protocolSection"]["identificationModule"]["nctId"] = "NCT09999998"
        self.assertEqual(FAKE.control("studies/put", {"study": new}),
                         {"nctId": "NCT09999998", "created": True})
        self.assertEqual(FAKE.get_json("/api/v2/studies/NCT09999998"), new)
        _, ids = walk({"pageSize": 1000, "fields": "NCTId"})
        self.assertEqual(ids[-1], "NCT09999998")
        status, _, _ = FAKE.request(
            "POST", "/__control/studies/put",
            json.dumps({"study": {"protocolSection": {}}}).encode())
        self.assertEqual(status, 400)

    def test_data_timestamp(self):
        FAKE.control("data-timestamp", {"dataTimestamp": "2027-05-06T07:08:09"})
        self.assertEqual(FAKE.get_json("/api/v2/version")["dataTimestamp"],
                         "2027-05-06T07:08:09")

    def test_stats_count_requests_with_timestamps(self):
        before = time.time()
        for _ in range(3):
            FAKE.get("/api/v2/version")
        FAKE.get("/api/v2/studies/metadata")
        stats = FAKE.stats()
        self.assertEqual(stats["counts"], {"/api/v2/version": 3,
                                           "/api/v2/studies/metadata": 1})
        times = [r["t"] for r in stats["requests"]]
        self.assertEqual(times, sorted(times))
        self.assertGreaterEqual(times[0], before - 1)
        self.assertEqual(FAKE.get("/__control/stats/count?path=/api/v2/version"
                                  )[2], b"3")
        self.assertEqual(FAKE.get("/__control/stats/count?path=/api/v2"
                                  "&prefix=1")[2], b"4")
        FAKE.control("stats/reset")
        self.assertEqual(FAKE.stats()["total"], 0)

    def test_unknown_control_operation(self):
        self.assertEqual(FAKE.request("POST", "/__control/nothing", b"{}")[0],
                         404)
        self.assertEqual(FAKE.request("POST", "/__control/faults",
                                      b"not json")[0], 400)


if __name__ == "__main__":
    unittest.main()
