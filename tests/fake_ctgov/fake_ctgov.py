#!/usr/bin/env python3
"""A fake ClinicalTrials.gov API v2 server for tests (standard library only).

Serves the recorded studies in <data-dir>/studies/ under /api/v2 with the real
API's contract (paging tokens, countTotal, filters, fields, sort, CSV, gzip,
301/400/404), plus a control API under /__control/ that lets a test change the
data and inject faults (429 with Retry-After, 5xx, connection resets, stalls,
truncated bodies, malformed JSON, HTML error pages, looping page tokens,
latency). docs/fake_ctgov.md is the manual.

Run:  /usr/bin/python3 fake_ctgov.py --data-dir <shared>/ctgov_v2 --port 0
It prints exactly one line `LISTENING <port>` on stdout once bound, logs to
stderr, and exits on SIGTERM/SIGINT, on POST /__control/shutdown, and by itself
after --max-lifetime seconds (default 900) so a crashed test never leaves it
running.

In-process use (Python tests): FakeCtgovServer(FakeCtgov(data_dir)).start().
"""

import argparse
import base64
import bisect
import gzip
import hashlib
import io
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from fake_ctgov_data import (Corpus, FieldCatalog, build_enums, build_trie,
                             compact_json, csv_columns, load_studies,
                             normalize_nct, project, render_csv, size_stats,
                             values_at)
from fake_ctgov_faults import FaultBook, parse_fault_flag
from fake_ctgov_query import QuerySyntaxError, compile_query, parse_date_number

API_PREFIX = "/api/v2"
CONTROL_PREFIX = "/__control/"
DEFAULT_API_VERSION = "2.0.3"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
DEFAULT_MAX_LIFETIME = 900.0
MAX_LOGGED_REQUESTS = 100000

# query.<x> -> search area param (see /studies/search-areas); `lead` is the
# LeadSponsorName piece.
QUERY_PARAMS = ("cond", "term", "locn", "titles", "intr", "outc", "spons",
                "lead", "id", "patient")
LIST_PARAMS = (
    {"format", "markupFormat", "fields", "sort", "countTotal", "pageSize",
     "pageToken", "aggFilters", "geoDecay"}
    | {"query." + q for q in QUERY_PARAMS}
    | {f"{p}.{f}" for p in ("filter", "postFilter")
       for f in ("overallStatus", "geo", "ids", "advanced", "synonyms")})
UNSUPPORTED_PARAMS = {"aggFilters", "geoDecay", "filter.synonyms",
                      "postFilter.synonyms"}
SINGLE_PARAMS = {"format", "markupFormat", "fields"}
TOKEN_FREE_PARAMS = {"pageToken", "pageSize", "countTotal"}
_LIST_SPLIT = re.compile(r"[,|]")
_IDS_ONLY = re.compile(r"^\s*(?:[Nn][Cc][Tt]\d+[\s,]*)+$")
_GEO = re.compile(r"^distance\((-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?),"
                  r"(\d+(?:\.\d+)?)(km|mi)?\)$")
_HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>"
    b"<body><h1>Service Temporarily Unavailable</h1><p>The server is "
    b"temporarily unable to service your request. Please try again later."
    b"</p></body></html>\n")
_MALFORMED_JSON = b'{"studies":[{"protocolSection":{"identificationModule":' \
                  b'{"nctId":"NCT0'


class ApiError(Exception):
    """An error answered with a plain-text body, like the real API."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Response:
    def __init__(self, status, body, content_type, headers=()):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = list(headers)


def text_response(status, message):
    return Response(status, message.encode("utf-8"),
                    "text/plain; charset=utf-8")


def json_response(value, status=200):
    return Response(status, compact_json(value).encode("utf-8"),
                    "application/json")


def _split_list(value):
    return [v.strip() for v in _LIST_SPLIT.split(value) if v.strip()]


def _parse_bool(name, value):
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ApiError(400, f"`{name}` must be true or false, got `{value}`")


def _haversine_km(lat1, lon1, lat2, lon2):
    from math import asin, cos, radians, sin, sqrt
    dlat = radians(lat2 - lat1)
    dlon = radians(lon2 - lon1)
    a = (sin(dlat / 2) ** 2
         + cos(radians(lat1)) * cos(radians(lat2)) * sin(dlon / 2) ** 2)
    return 2 * 6371.0088 * asin(sqrt(a))


class RequestLog:
    """Every API request (not control requests), for tests. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []
        self._counts = {}
        self._seq = 0

    def start(self, method, path, query):
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, "t": time.time(),
                     "monotonic": time.monotonic(), "method": method,
                     "path": path, "query": query, "status": None,
                     "fault": None}
            self._entries.append(entry)
            if len(self._entries) > MAX_LOGGED_REQUESTS:
                del self._entries[: len(self._entries) // 2]
            self._counts[path] = self._counts.get(path, 0) + 1
            return entry

    def finish(self, entry, status, fault):
        with self._lock:
            entry["status"] = status
            entry["fault"] = fault

    def reset(self):
        with self._lock:
            self._entries = []
            self._counts = {}

    def snapshot(self, path=None, prefix=False):
        def wanted(p):
            return path is None or (p.startswith(path) if prefix else p == path)
        with self._lock:
            entries = [dict(e) for e in self._entries if wanted(e["path"])]
            counts = {p: n for p, n in self._counts.items() if wanted(p)}
        return {"total": sum(counts.values()), "counts": counts,
                "requests": entries}


def _find_spec(data_dir):
    spec_dir = os.path.join(data_dir, "openapi")
    preferred = os.path.join(spec_dir, "ctg-oas-v2_2.0.3_cyanheads.yaml")
    if os.path.exists(preferred):
        return preferred
    specs = sorted(n for n in os.listdir(spec_dir)
                   if n.startswith("ctg-oas-v2_") and n.endswith(".yaml"))
    if not specs:
        raise ValueError(f"no ctg-oas-v2_*.yaml in {spec_dir}")
    return os.path.join(spec_dir, specs[-1])


class FakeCtgov:
    """The fake API's state and request logic, without the HTTP plumbing.

    Loads the corpus once. Every public method is thread-safe.
    """

    def __init__(self, data_dir, data_timestamp=None,
                 api_version=DEFAULT_API_VERSION, aliases=None, faults=(),
                 verbose=False):
        studies_dir = os.path.join(data_dir, "studies")
        if not os.path.isdir(studies_dir):
            raise ValueError(f"no studies directory at {studies_dir}")
        endpoints = os.path.join(data_dir, "endpoints")
        with open(os.path.join(
                endpoints, "studies_metadata_2025-05_metamonk.json"),
                encoding="utf-8") as f:
            metadata = json.load(f)
        with open(os.path.join(
                endpoints, "studies_search-areas_2025-05_metamonk.json"),
                encoding="utf-8") as f:
            self._search_areas = json.load(f)
        self.catalog = FieldCatalog(metadata, self._search_areas)
        self.corpus = Corpus(load_studies(studies_dir))
        self.enums = build_enums(_find_spec(data_dir), self.catalog)
        self.status_values = set()
        for enum in self.enums:
            if enum["type"] == "Status":
                self.status_values = {v["value"] for v in enum["values"]}
        if not self.status_values:
            raise ValueError("the OpenAPI spec has no Status enum")
        self.api_version = api_version
        self._initial_timestamp = data_timestamp or self._default_timestamp()
        self.data_timestamp = self._initial_timestamp
        self._initial_aliases = {}
        for old, new in (aliases or {}).items():
            old_id, new_id = normalize_nct(old), normalize_nct(new)
            if old_id is None or new_id is None:
                raise ValueError(f"bad alias {old}={new}")
            self._initial_aliases[old_id] = new_id
        self.corpus.reset(self._initial_aliases)
        self._initial_faults = [dict(f) for f in faults]
        self.faults = FaultBook()
        for spec in self._initial_faults:
            self.faults.add(spec)
        self.log = RequestLog()
        self.verbose = verbose
        self.stop_event = threading.Event()
        self.on_shutdown = None
        self._lock = threading.Lock()
        self._size_cache = (None, None)
        self._metadata_cache = {}

    def _default_timestamp(self):
        holders = [h for r in self.corpus.ordered() for h in values_at(
            r.data, ("derivedSection", "miscInfoModule", "versionHolder"))]
        day = max(holders) if holders else "2025-01-01"
        return f"{day}T00:00:00"

    # ------------------------------------------------------------------ API
    def handle_api(self, method, path, query, host, loop_token=False):
        """Answers one API request; raises ApiError for 4xx answers."""
        if not path.startswith(API_PREFIX + "/"):
            raise ApiError(404, f"Not Found: {path}")
        route = path[len(API_PREFIX):]
        if method != "GET":
            raise ApiError(405, f"Method {method} is not allowed")
        if route == "/studies":
            return self.list_studies(query, loop_token)
        if route == "/studies/metadata":
            return self.metadata(query)
        if route == "/studies/search-areas":
            self._params(query, set())
            return json_response(self._search_areas)
        if route == "/studies/enums":
            self._params(query, set())
            return json_response(self.enums)
        if route == "/stats/size":
            self._params(query, set())
            return json_response(self.size_stats())
        if route == "/version":
            self._params(query, set())
            return json_response({"apiVersion": self.api_version,
                                  "dataTimestamp": self.data_timestamp})
        if route in ("/stats/field/values", "/stats/field/sizes"):
            raise ApiError(501, f"{route} is not implemented by fake_ctgov")
        if route.startswith("/studies/"):
            return self.get_study(route[len("/studies/"):], query, host)
        raise ApiError(404, f"Not Found: {path}")

    @staticmethod
    def _params(query, allowed):
        params = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key not in allowed:
                raise ApiError(400, f"`{key}` is unknown parameter")
            params[key] = value
        return params

    def _fields_trie(self, value, query_paths=()):
        items = _split_list(value)
        if not items:
            raise ApiError(400, "`fields` must be a non-empty list")
        paths = []
        for item in items:
            if item == "@query":
                resolved = tuple(query_paths)
            else:
                resolved = self.catalog.resolve_field(item)
            if resolved is None:
                raise ApiError(
                    400, f"Parameter `fields` contains unknown field `{item}`")
            paths.extend(resolved)
        return build_trie(paths)

    @staticmethod
    def _csv_columns(params):
        try:
            return csv_columns(_split_list(params["fields"])
                               if "fields" in params else None)
        except ValueError as e:
            raise ApiError(400, str(e))

    @staticmethod
    def _check_markup(params):
        markup = params.get("markupFormat", "markdown")
        if markup not in ("markdown", "legacy"):
            raise ApiError(400, f"Invalid `markupFormat` `{markup}`")

    def _project_bytes(self, record, trie):
        if trie is None:
            return record.json_bytes
        kept = project(record.data, trie) or {}
        return compact_json(kept).encode("utf-8")

    # --------------------------------------------------------- /studies
    def _compile(self, name, value, paths):
        try:
            return compile_query(value, paths, self.catalog)
        except QuerySyntaxError as e:
            raise ApiError(400, f"Invalid `{name}`: {e}")

    def _filters(self, params):
        """-> (list of predicates over StudyRecord, searched paths)."""
        predicates = []
        searched = []
        ids_only = False
        for q in QUERY_PARAMS:
            name = "query." + q
            value = params.get(name, "")
            if not value.strip():
                continue
            if _IDS_ONLY.match(value):
                ids_only = True
                wanted = {normalize_nct(t) for t in re.split(r"[\s,]+", value)
                          if t}
                predicates.append(self._ids_predicate(wanted))
                continue
            if q == "lead":
                paths = (self.catalog.piece_path("LeadSponsorName"),)
            else:
                paths = self.catalog.param_areas.get(q)
            searched.extend(paths)
            compiled = self._compile(name, value, paths)
            if compiled is not None:
                predicates.append(compiled.matches)
        if ids_only:  # "If any query parameter contains only NCT IDs,
            return predicates, searched  # filters are ignored."
        for prefix in ("filter", "postFilter"):
            status = params.get(prefix + ".overallStatus")
            if status is not None:
                predicates.append(self._status_predicate(
                    prefix + ".overallStatus", status))
            ids = params.get(prefix + ".ids")
            if ids is not None:
                wanted = set()
                for item in re.split(r"[,|\s]+", ids):
                    if not item:
                        continue
                    nct = normalize_nct(item)
                    if nct is None:
                        raise ApiError(
                            400, f"Invalid NCT ID `{item}` in `{prefix}.ids`")
                    wanted.add(nct)
                predicates.append(self._ids_predicate(wanted))
            geo = params.get(prefix + ".geo")
            if geo is not None:
                predicates.append(self._geo_predicate(prefix + ".geo", geo))
            advanced = params.get(prefix + ".advanced")
            if advanced is not None and advanced.strip():
                compiled = self._compile(prefix + ".advanced", advanced,
                                         self.catalog.param_areas["term"])
                if compiled is not None:
                    predicates.append(compiled.matches)
        return predicates, searched

    def _status_predicate(self, name, value):
        wanted = set()
        for item in _split_list(value):
            if item.upper() not in self.status_values:
                raise ApiError(400, f"Invalid value `{item}` in parameter "
                               f"`{name}`")
            wanted.add(item.upper())
        if not wanted:
            raise ApiError(400, f"`{name}` must be a non-empty list")
        return lambda rec: rec.data["protocolSection"].get(
            "statusModule", {}).get("overallStatus") in wanted

    @staticmethod
    def _ids_predicate(wanted):
        return lambda rec: (rec.nct_id in wanted
                            or any(a in wanted for a in rec.aliases))

    def _geo_predicate(self, name, value):
        m = _GEO.match(value.strip())
        if not m:
            raise ApiError(400, f"Invalid `{name}`: expected "
                           "distance(latitude,longitude,distance[km|mi])")
        lat, lon, dist = float(m.group(1)), float(m.group(2)), float(m.group(3))
        km = dist if m.group(4) == "km" else dist * 1.609344
        path = ("protocolSection", "contactsLocationsModule", "locations",
                "geoPoint")

        def near(rec):
            for point in values_at(rec.data, path):
                if (isinstance(point, dict) and "lat" in point
                        and _haversine_km(lat, lon, point["lat"],
                                          point["lon"]) <= km):
                    return True
            return False
        return near

    def _sort_spec(self, value):
        items = _split_list(value)
        if len(items) > 2:
            raise ApiError(400, "`sort` accepts at most 2 items")
        spec = []
        for item in items:
            name, _, direction = item.partition(":")
            name, direction = name.strip(), direction.strip().lower()
            if direction not in ("", "asc", "desc"):
                raise ApiError(400, f"Invalid sort direction in `{item}`")
            if name == "@relevance":
                continue  # the fake has no relevance: NCT id order.
            resolved = self.catalog.resolve_field(name)
            if (resolved is None or len(resolved) != 1
                    or not self.catalog.sortable(resolved[0])):
                raise ApiError(400, f"`{name}` cannot be used for sorting: "
                               "only date and numeric fields are allowed")
            path = resolved[0]
            kind = self.catalog.kind(path)
            descending = direction == "desc" or (direction == "" and
                                                 kind == "date")
            spec.append((path, kind, descending))
        return spec

    @staticmethod
    def _sort_key(record, spec):
        key = []
        for path, kind, descending in spec:
            number = None
            for raw in values_at(record.data, path):
                if kind == "date" and isinstance(raw, str):
                    number = parse_date_number(raw)
                elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
                    number = raw
                elif isinstance(raw, str):
                    try:
                        number = float(raw)
                    except ValueError:
                        number = None
                if number is not None:
                    break
            if number is None:
                key.extend((1, 0))  # studies missing the field are last
            else:
                key.extend((0, -number if descending else number))
        key.append(record.nct_id)
        return tuple(key)

    @staticmethod
    def _query_hash(params):
        items = sorted((k, v) for k, v in params.items()
                       if k not in TOKEN_FREE_PARAMS)
        return hashlib.sha256(compact_json(items).encode()).hexdigest()[:16]

    @staticmethod
    def _encode_token(query_hash, key):
        payload = compact_json({"q": query_hash,
                                "k": None if key is None else list(key)})
        return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()

    @staticmethod
    def _decode_token(token, query_hash):
        try:
            padded = token + "=" * (-len(token) % 4)
            raw = base64.urlsafe_b64decode(padded.encode("ascii"))
            payload = json.loads(raw.decode("utf-8"))
            if not isinstance(payload, dict) or payload.get("q") != query_hash:
                raise ValueError("foreign token")
            key = payload.get("k")
            if key is None:
                return None
            if not isinstance(key, list) or not key or not isinstance(
                    key[-1], str):
                raise ValueError("bad key")
            return tuple(key)
        except (ValueError, UnicodeError, TypeError):
            raise ApiError(400, "Invalid `pageToken`: it must be a "
                           "`nextPageToken` of a request with the same "
                           "parameters")

    def list_studies(self, query, loop_token=False):
        params = self._params(query, LIST_PARAMS)
        for name in UNSUPPORTED_PARAMS & set(params):
            raise ApiError(400, f"`{name}` is not supported by fake_ctgov")
        fmt = params.get("format", "json")
        if fmt not in ("json", "csv"):
            raise ApiError(400, f"Invalid `format` `{fmt}`: json or csv")
        self._check_markup(params)
        page_size = DEFAULT_PAGE_SIZE
        if "pageSize" in params:
            try:
                page_size = int(params["pageSize"])
            except ValueError:
                raise ApiError(400, "`pageSize` must be an integer, got "
                               f"`{params['pageSize']}`")
            if page_size < 0:
                raise ApiError(400, "`pageSize` must be >= 0, got "
                               f"{page_size}")
            # As the API: 0 means the default, more than 1,000 is coerced.
            page_size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        count_total = _parse_bool("countTotal",
                                  params.get("countTotal", "false"))
        predicates, searched = self._filters(params)
        spec = self._sort_spec(params.get("sort", ""))
        trie = None
        columns = None
        if fmt == "csv":
            columns = self._csv_columns(params)
        elif "fields" in params:
            trie = self._fields_trie(params["fields"], searched)
        query_hash = self._query_hash(params)
        token = params.get("pageToken")
        cursor = None
        if token is not None:
            cursor = self._decode_token(token, query_hash)

        matching = [r for r in self.corpus.ordered()
                    if all(p(r) for p in predicates)]
        keyed = sorted(((self._sort_key(r, spec), r) for r in matching),
                       key=lambda t: t[0]) \
            if spec else [(self._sort_key(r, spec), r) for r in matching]
        keys = [k for k, _ in keyed]
        start = 0 if cursor is None else bisect.bisect_right(keys, cursor)
        page = keyed[start:start + page_size]
        next_token = None
        if start + page_size < len(keyed):
            next_token = self._encode_token(query_hash, page[-1][0])
        if loop_token:
            next_token = token or self._encode_token(query_hash, None)
        total = len(matching) if count_total and token is None else None

        headers = []
        if fmt == "csv":
            if next_token:
                headers.append(("x-next-page-token", next_token))
            if total is not None:
                headers.append(("x-total-count", str(total)))
            body = render_csv([r for _, r in page], columns,
                              header=token is None)
            return Response(200, body, "text/csv; charset=utf-8", headers)
        parts = []
        if total is not None:
            parts.append(b'"totalCount":%d' % total)
        parts.append(b'"studies":[' + b",".join(
            self._project_bytes(r, trie) for _, r in page) + b"]")
        if next_token:
            parts.append(b'"nextPageToken":"' + next_token.encode() + b'"')
        return Response(200, b"{" + b",".join(parts) + b"}",
                        "application/json")

    # ------------------------------------------------- /studies/{nctId}
    def get_study(self, raw_id, query, host):
        params = self._params(query, SINGLE_PARAMS)
        nct = normalize_nct(raw_id)
        if nct is None:
            raise ApiError(400, f"Invalid NCT ID `{raw_id}`: expected "
                           "NCT followed by up to 8 digits")
        fmt = params.get("format", "json")
        if fmt in ("fhir.json", "ris"):
            raise ApiError(400, f"format `{fmt}` is not supported by "
                           "fake_ctgov")
        if fmt not in ("json", "csv", "json.zip"):
            raise ApiError(400, f"Invalid `format` `{fmt}`")
        self._check_markup(params)
        target = self.corpus.alias_map().get(nct)
        record = None if target else self.corpus.get(nct)
        if record is None and target is None:
            target = self.corpus.resolve_alias(nct)
        if target is not None:
            location = f"http://{host}{API_PREFIX}/studies/{target}"
            if query:
                location += "?" + query
            return Response(301, f"Moved Permanently: {location}".encode(),
                            "text/plain; charset=utf-8",
                            [("Location", location)])
        if record is None:
            raise ApiError(404, f"Study {nct} not found")
        if fmt == "csv":
            columns = self._csv_columns(params)
            return Response(200, render_csv([record], columns, header=True),
                            "text/csv; charset=utf-8")
        trie = (self._fields_trie(params["fields"]) if "fields" in params
                else None)
        body = self._project_bytes(record, trie)
        if fmt == "json.zip":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(f"{nct}.json", body)
            return Response(200, buf.getvalue(), "application/zip",
                            [("Content-Disposition",
                              f'attachment; filename="{nct}.zip"')])
        return Response(200, body, "application/json")

    # ------------------------------------------------------- the others
    def metadata(self, query):
        params = self._params(query, {"includeIndexedOnly",
                                      "includeHistoricOnly"})
        indexed = _parse_bool("includeIndexedOnly",
                              params.get("includeIndexedOnly", "false"))
        historic = _parse_bool("includeHistoricOnly",
                               params.get("includeHistoricOnly", "false"))

        def keep(nodes):
            out = []
            for node in nodes:
                if node.get("indexedOnly") and not indexed:
                    continue
                if node.get("historicOnly") and not historic:
                    continue
                if "children" in node:
                    node = dict(node, children=keep(node["children"]))
                out.append(node)
            return out
        with self._lock:
            body = self._metadata_cache.get((indexed, historic))
            if body is None:
                body = compact_json(keep(self.catalog.metadata)).encode()
                self._metadata_cache[(indexed, historic)] = body
        return Response(200, body, "application/json")

    def size_stats(self):
        with self._lock:
            generation, stats = self._size_cache
            if generation != self.corpus.generation:
                generation = self.corpus.generation
                stats = size_stats(self.corpus.ordered())
                self._size_cache = (generation, stats)
            return stats

    # -------------------------------------------------------- control
    def handle_control(self, method, path, query, body):
        """Answers /__control/... (JSON in, JSON out)."""
        route = path[len(CONTROL_PREFIX):].rstrip("/")
        try:
            args = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (ValueError, UnicodeError) as e:
            return json_response({"error": f"body is not JSON: {e}"}, 400)
        if not isinstance(args, dict):
            return json_response({"error": "body must be a JSON object"}, 400)
        handlers = {
            ("GET", "stats"): self._ctl_stats,
            ("GET", "stats/count"): self._ctl_count,
            ("POST", "stats/reset"): self._ctl_stats_reset,
            ("GET", "faults"): lambda q, a: json_response(
                {"faults": self.faults.describe()}),
            ("POST", "faults"): self._ctl_add_fault,
            ("POST", "faults/clear"): self._ctl_clear_faults,
            ("POST", "data-timestamp"): self._ctl_data_timestamp,
            ("POST", "studies/put"): self._ctl_put,
            ("POST", "studies/patch"): self._ctl_patch,
            ("POST", "studies/delete"): self._ctl_delete,
            ("POST", "aliases"): self._ctl_alias,
            ("POST", "reset"): self._ctl_reset,
            ("POST", "shutdown"): self._ctl_shutdown,
        }
        handler = handlers.get((method, route))
        if handler is None:
            return json_response(
                {"error": f"no control operation {method} {path}"}, 404)
        try:
            return handler(query, args)
        except (ValueError, TypeError) as e:
            return json_response({"error": str(e)}, 400)

    def _ctl_stats(self, query, args):
        q = dict(parse_qsl(query))
        return json_response(self.log.snapshot(
            q.get("path"), q.get("prefix", "0") in ("1", "true")))

    def _ctl_count(self, query, args):
        q = dict(parse_qsl(query))
        snap = self.log.snapshot(q.get("path"),
                                 q.get("prefix", "0") in ("1", "true"))
        return text_response(200, str(snap["total"]))

    def _ctl_stats_reset(self, query, args):
        self.log.reset()
        return json_response({"ok": True})

    def _ctl_add_fault(self, query, args):
        specs = args["faults"] if "faults" in args else [args]
        ids = [self.faults.add(spec).id for spec in specs]
        return json_response({"ids": ids, "id": ids[0] if ids else None})

    def _ctl_clear_faults(self, query, args):
        self.faults.clear()
        return json_response({"ok": True})

    def _ctl_data_timestamp(self, query, args):
        value = args.get("dataTimestamp")
        if not isinstance(value, str) or not value:
            raise ValueError("want {\"dataTimestamp\": \"yyyy-MM-ddTHH:mm:ss\"}")
        with self._lock:
            self.data_timestamp = value
        return json_response({"dataTimestamp": value})

    def _ctl_put(self, query, args):
        if "study" not in args:
            raise ValueError("want {\"study\": {...}}")
        nct, created = self.corpus.put(args["study"])
        return json_response({"nctId": nct, "created": created},
                             201 if created else 200)

    def _study_id(self, args):
        nct = normalize_nct(str(args.get("nctId", "")))
        if nct is None:
            raise ValueError("want \"nctId\": \"NCT........\"")
        return nct

    def _ctl_patch(self, query, args):
        nct = self._study_id(args)
        set_values = args.get("set", {})
        delete_paths = args.get("delete", [])
        if not isinstance(set_values, dict) or not isinstance(delete_paths,
                                                              list):
            raise ValueError("\"set\" is an object, \"delete\" a list")
        try:
            self.corpus.patch(nct, set_values, delete_paths, args.get("touch"))
        except KeyError:
            return json_response({"error": f"no study {nct}"}, 404)
        except (IndexError, AttributeError) as e:
            raise ValueError(f"bad path: {e}")
        return json_response({"nctId": nct})

    def _ctl_delete(self, query, args):
        nct = self._study_id(args)
        try:
            self.corpus.delete(nct)
        except KeyError:
            return json_response({"error": f"no study {nct}"}, 404)
        return json_response({"nctId": nct})

    def _ctl_alias(self, query, args):
        old = normalize_nct(str(args.get("from", "")))
        new = args.get("to")
        if old is None or (new is not None and normalize_nct(str(new)) is None):
            raise ValueError("want {\"from\": NCT id, \"to\": NCT id or null}")
        self.corpus.set_alias(old, None if new is None else normalize_nct(new))
        return json_response({"aliases": self.corpus.alias_map()})

    def _ctl_reset(self, query, args):
        self.reset()
        return json_response({"ok": True})

    def _ctl_shutdown(self, query, args):
        if self.on_shutdown is not None:
            self.on_shutdown("POST /__control/shutdown")
        return json_response({"ok": True})

    def reset(self):
        """Back to the start: studies, aliases, faults, timestamp, stats."""
        self.corpus.reset(self._initial_aliases)
        self.faults.clear()
        for spec in self._initial_faults:
            self.faults.add(spec)
        with self._lock:
            self.data_timestamp = self._initial_timestamp
        self.log.reset()


# ---------------------------------------------------------------- HTTP


def _accepts_gzip(header):
    for item in (header or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = 1.0
            m = re.search(r"q=([0-9.]+)", params)
            if m:
                try:
                    q = float(m.group(1))
                except ValueError:
                    q = 0.0
            if q > 0:
                return True
    return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-ctgov/1.0"

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.server.app.verbose:
            sys.stderr.write("fake_ctgov: %s - %s\n" % (self.address_string(),
                                                        fmt % args))

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method):
        app = self.server.app
        split = urlsplit(self.path)
        path, query = split.path, split.query
        body = self._read_body()
        if path.startswith(CONTROL_PREFIX):
            self._send(app.handle_control(method, path, query, body), False)
            return
        entry = app.log.start(method, path, query)
        delay, rule = app.faults.pick(path)
        if delay > 0:
            app.stop_event.wait(delay)
        kind = rule.kind if rule is not None else None
        if kind == "reset":
            app.log.finish(entry, None, kind)
            self._reset_connection()
            return
        try:
            if rule is not None and rule.status is not None:
                resp = text_response(rule.status,
                                     self.responses.get(rule.status,
                                                        ("Error",))[0])
                if rule.retry_after is not None:
                    resp.headers.append(("Retry-After", rule.retry_after))
            elif kind == "html":
                resp = Response(200, _HTML_ERROR_PAGE,
                                "text/html; charset=utf-8")
            elif kind == "malformed_json":
                resp = Response(200, _MALFORMED_JSON, "application/json")
            else:
                host = self.headers.get("Host") or \
                    f"127.0.0.1:{self.server.server_address[1]}"
                resp = app.handle_api(method, path, query, host,
                                      loop_token=kind == "loop_token")
        except ApiError as e:
            resp = text_response(e.status, e.message)
        except Exception:  # a bug in the fake: say so, keep serving
            traceback.print_exc(file=sys.stderr)
            resp = text_response(500, "internal error in fake_ctgov")
        app.log.finish(entry, resp.status, kind)
        partial = rule if kind in ("stall", "truncate") else None
        self._send(resp, _accepts_gzip(self.headers.get("Accept-Encoding")),
                   partial)

    def _send(self, resp, gzip_ok, partial=None):
        body = resp.body
        headers = list(resp.headers)
        if gzip_ok and body:
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
            headers.append(("Vary", "Accept-Encoding"))
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if partial is None:
            self.wfile.write(body)
            return
        sent = partial.after_bytes
        if sent is None:
            sent = len(body) // 2
        self.wfile.write(body[:max(0, min(sent, len(body) - 1))])
        self.wfile.flush()
        if partial.kind == "stall":
            self.server.app.stop_event.wait(partial.stall_seconds)
        self.close_connection = True

    def _reset_connection(self):
        """Closes the socket with SO_LINGER 0: the client sees a RST."""
        self.close_connection = True
        fd = self.connection.detach()
        sock = socket.socket(fileno=fd)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        finally:
            sock.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        # Clients that hang up (timeouts in fault tests) are expected.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class FakeCtgovServer:
    """Serves a FakeCtgov on 127.0.0.1 in a background thread.

        app = FakeCtgov(data_dir)
        with FakeCtgovServer(app) as server:
            urlopen(server.base_url + "/version")
    """

    def __init__(self, app, host="127.0.0.1", port=0):
        self.app = app
        self.httpd = _Server((host, port), _Handler)
        self.httpd.app = app
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://{host}:{self.port}{API_PREFIX}"
        self.root_url = f"http://{host}:{self.port}"
        self._thread = None
        self._stopping = threading.Lock()
        self.stop_reason = None

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever,
                                        name="fake-ctgov", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        self.httpd.serve_forever(poll_interval=0.1)

    def request_stop(self, reason):
        """Asks serve_forever to return; safe from any thread or signal."""
        if not self._stopping.acquire(blocking=False):
            return
        self.stop_reason = reason
        self.app.stop_event.set()
        threading.Thread(target=self.httpd.shutdown, daemon=True).start()

    def stop(self):
        self.request_stop("stop()")
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _loopback(host):
    return host in ("localhost", "::1") or host.startswith("127.")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Fake ClinicalTrials.gov API v2 for tests.")
    parser.add_argument("--data-dir", required=True,
                        help="the recorded ctgov_v2 folder (studies/, "
                             "endpoints/, openapi/)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0,
                        help="port; 0 picks a free one (default)")
    parser.add_argument("--max-lifetime", type=float,
                        default=DEFAULT_MAX_LIFETIME,
                        help="exit after this many seconds (default 900)")
    parser.add_argument("--data-timestamp",
                        help="/version dataTimestamp (default: newest "
                             "versionHolder of the corpus, T00:00:00)")
    parser.add_argument("--api-version", default=DEFAULT_API_VERSION)
    parser.add_argument("--alias", action="append", default=[],
                        metavar="OLD=NEW",
                        help="GET /studies/OLD answers 301 to NEW")
    parser.add_argument("--fault", action="append", default=[],
                        metavar="SPEC",
                        help="a fault rule, e.g. 'path=/api/v2/studies,"
                             "kind=429,count=2,retry_after=1'")
    parser.add_argument("--watch-parent", action="store_true",
                        help="exit when the parent process goes away")
    parser.add_argument("--verbose", action="store_true",
                        help="log every request to stderr")
    args = parser.parse_args(argv)

    if not _loopback(args.host):
        parser.error("--host must be a loopback address")
    if args.max_lifetime <= 0:
        parser.error("--max-lifetime must be > 0")
    try:
        aliases = {}
        for item in args.alias:
            old, sep, new = item.partition("=")
            if not sep:
                raise ValueError(f"--alias {item!r} is not OLD=NEW")
            aliases[old] = new
        faults = [parse_fault_flag(f) for f in args.fault]
        app = FakeCtgov(args.data_dir, data_timestamp=args.data_timestamp,
                        api_version=args.api_version, aliases=aliases,
                        faults=faults, verbose=args.verbose)
        server = FakeCtgovServer(app, args.host, args.port)
    except (OSError, ValueError, KeyError) as e:
        print(f"fake_ctgov: cannot start: {e}", file=sys.stderr)
        return 2

    app.on_shutdown = server.request_stop
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: server.request_stop(
            signal.Signals(signum).name))

    def lifetime():
        if not app.stop_event.wait(args.max_lifetime):
            server.request_stop(f"--max-lifetime {args.max_lifetime:g}s")
    threading.Thread(target=lifetime, daemon=True).start()

    if args.watch_parent:
        parent = os.getppid()

        def watch():
            while not app.stop_event.wait(0.5):
                if os.getppid() != parent:
                    server.request_stop("parent exited")
        threading.Thread(target=watch, daemon=True).start()

    print(f"LISTENING {server.port}", flush=True)
    server.serve_forever()
    server.httpd.server_close()
    print(f"fake_ctgov: stopped ({server.stop_reason})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
