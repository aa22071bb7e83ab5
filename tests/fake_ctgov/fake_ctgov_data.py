"""The fake upstream's data: recorded studies, the field catalog, projections.

Everything here is plain data work with no HTTP: fake_ctgov.py serves it.

* FieldCatalog: piece names, field paths and search areas, read from the
  recorded `/studies/metadata` and `/studies/search-areas` responses; resolves
  `fields=`, `sort=` and `AREA[...]` names to paths inside a study.
* StudyRecord: one immutable study (its JSON bytes are cached).
* Corpus: the mutable set of studies, loaded once from ctgov_v2/studies/,
  with mutations (put/patch/delete/reset) and aliases. Thread-safe (one lock).
* project(): keeps only the selected paths of a study (`fields=`).
* CSV rendering with the API's CSV column names.
* build_enums(): `/studies/enums` built from the OpenAPI spec's enum schemas.
* size_stats(): `/stats/size` computed from the corpus.
"""

import copy
import csv
import io
import json
import os
import re
import threading

NCT_PATTERN = re.compile(r"^[Nn][Cc][Tt]0*([1-9]\d{0,7})$")


def normalize_nct(text):
    """'nct0001234' -> 'NCT00001234'; None when it is not an NCT id."""
    m = NCT_PATTERN.match(text.strip())
    if not m:
        return None
    return "NCT" + m.group(1).zfill(8)


def compact_json(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------
# Field catalog


class FieldCatalog:
    """Names the API accepts for fields, sort keys and search areas.

    Built from the recorded metadata (a FieldNode tree) and search areas.
    Lookups are case-insensitive. Immutable after construction.
    """

    def __init__(self, metadata, search_areas):
        self.metadata = metadata
        self.search_areas = search_areas
        self.nodes = {}          # path tuple -> node (without children)
        self._by_piece = {}      # lower piece -> path
        self._by_path = {}       # lower dotted path -> path
        self._areas = {}         # lower area name -> tuple of paths
        self.param_areas = {}    # 'cond' -> tuple of paths
        self._walk(metadata, ())
        for doc in search_areas:
            for area in doc.get("areas", []):
                paths = []
                for part in area.get("parts", []):
                    for piece in part.get("pieces", []):
                        path = self._by_piece.get(piece.lower())
                        if path is not None and path not in paths:
                            paths.append(path)
                self._areas.setdefault(area["name"].lower(), tuple(paths))
                if area.get("param"):
                    self.param_areas.setdefault(area["param"], tuple(paths))

    def _walk(self, nodes, prefix):
        for node in nodes:
            path = prefix + (node["name"],)
            self.nodes[path] = {k: v for k, v in node.items() if k != "children"}
            self._by_piece.setdefault(node["piece"].lower(), path)
            self._by_path[".".join(path).lower()] = path
            self._walk(node.get("children", []), path)

    def piece_path(self, piece):
        return self._by_piece.get(piece.lower())

    def resolve_field(self, name):
        """fields= item -> tuple of paths, or None when unknown.

        Accepts area names (e.g. ConditionSearch), piece names (NCTId,
        IdentificationModule) and field paths
        (protocolSection.identificationModule).
        """
        key = name.strip().lower()
        if key in self._by_path:
            return (self._by_path[key],)
        if key in self._by_piece:
            return (self._by_piece[key],)
        if key in self._areas:
            return self._areas[key]
        return None

    def resolve_area_or_piece(self, name):
        key = name.strip().lower()
        if key in self._areas:
            return self._areas[key]
        return self.resolve_field(name)

    def kind(self, path):
        node = self.nodes.get(path, {})
        if node.get("sourceType") == "DATE":
            return "date"
        if node.get("type") in ("integer", "number", "long"):
            return "number"
        if node.get("isEnum"):
            return "enum"
        return "text"

    def all_enum(self, paths):
        return bool(paths) and all(self.kind(p) == "enum" for p in paths)

    def range_kind(self, paths):
        kinds = {self.kind(p) for p in paths}
        if len(kinds) == 1 and kinds <= {"date", "number"}:
            return kinds.pop()
        return "text"

    def sortable(self, path):
        return self.kind(path) in ("date", "number")

    def enum_types(self):
        """enum type name ('Status') -> list of piece names having it."""
        types = {}
        for node in self.nodes.values():
            if node.get("isEnum"):
                name = node["type"].rstrip("[]")
                pieces = types.setdefault(name, [])
                if node["piece"] not in pieces:
                    pieces.append(node["piece"])
        return types


def values_at(obj, path):
    """Every value found at `path` in `obj`, descending through lists."""
    current = [obj]
    for key in path:
        nxt = []
        for item in current:
            if isinstance(item, dict):
                if key in item:
                    nxt.append(item[key])
            elif isinstance(item, list):
                for elem in item:
                    if isinstance(elem, dict) and key in elem:
                        nxt.append(elem[key])
        current = nxt
    out = []
    for item in current:
        if isinstance(item, list):
            out.extend(item)
        else:
            out.append(item)
    return out


def _strings_under(value, out):
    if isinstance(value, dict):
        for v in value.values():
            _strings_under(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings_under(v, out)
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif value is not None:
        out.append(str(value))


# --------------------------------------------------------------------------
# Studies


class StudyRecord:
    """One study as served. Immutable: mutations make a new record."""

    __slots__ = ("nct_id", "data", "_json", "_strings")

    def __init__(self, data, raw_json=None):
        self.data = data
        self.nct_id = data["protocolSection"]["identificationModule"]["nctId"]
        self._json = raw_json
        self._strings = {}

    @property
    def json_bytes(self):
        if self._json is None:
            self._json = compact_json(self.data).encode("utf-8")
        return self._json

    @property
    def aliases(self):
        ident = self.data["protocolSection"]["identificationModule"]
        return [a.upper() for a in ident.get("nctIdAliases", [])]

    def strings(self, paths):
        """Texts (str) at any of `paths`, cached per paths tuple."""
        cached = self._strings.get(paths)
        if cached is None:
            cached = []
            for path in paths:
                for value in values_at(self.data, path):
                    _strings_under(value, cached)
            self._strings[paths] = cached
        return cached


def validate_study(data):
    """Returns the study's NCT id or raises ValueError with a reason."""
    if not isinstance(data, dict):
        raise ValueError("a study must be a JSON object")
    try:
        nct = data["protocolSection"]["identificationModule"]["nctId"]
    except (KeyError, TypeError):
        raise ValueError("missing protocolSection.identificationModule.nctId")
    if not isinstance(nct, str) or normalize_nct(nct) != nct:
        raise ValueError(f"bad nctId {nct!r} (want NCT + 8 digits)")
    return nct


def load_studies(studies_dir):
    """Reads every NCT*.json in `studies_dir` -> {nct: StudyRecord}."""
    records = {}
    for name in sorted(os.listdir(studies_dir)):
        if not (name.startswith("NCT") and name.endswith(".json")):
            continue
        with open(os.path.join(studies_dir, name), "rb") as f:
            data = json.loads(f.read())
        nct = validate_study(data)
        records[nct] = StudyRecord(data)
    return records


def set_path(obj, dotted, value, delete=False):
    """Sets (or deletes) `a.b.0.c` in nested dicts/lists, creating dicts."""
    keys = dotted.split(".")
    for i, key in enumerate(keys[:-1]):
        if isinstance(obj, list):
            obj = obj[int(key)]
            continue
        if key not in obj or not isinstance(obj[key], (dict, list)):
            if delete:
                return
            obj[key] = {}
        obj = obj[key]
    last = keys[-1]
    if isinstance(obj, list):
        if delete:
            del obj[int(last)]
        else:
            obj[int(last)] = value
    elif delete:
        obj.pop(last, None)
    else:
        obj[last] = value


class Corpus:
    """The studies being served, with test mutations. Thread-safe."""

    def __init__(self, records):
        self._initial = dict(records)
        self._records = dict(records)
        self._lock = threading.Lock()
        self._ordered = None
        self._alias_index = None
        self._extra_aliases = {}
        self.generation = 0

    # -- reads -------------------------------------------------------------
    def ordered(self):
        """All records sorted by NCT id (a list the caller must not modify)."""
        with self._lock:
            if self._ordered is None:
                self._ordered = [self._records[k]
                                 for k in sorted(self._records)]
            return self._ordered

    def get(self, nct):
        with self._lock:
            return self._records.get(nct)

    def __len__(self):
        with self._lock:
            return len(self._records)

    def resolve_alias(self, nct):
        """The current NCT id that `nct` is an alias of, or None."""
        with self._lock:
            if nct in self._extra_aliases:
                return self._extra_aliases[nct]
            if self._alias_index is None:
                self._alias_index = {}
                for rec in self._records.values():
                    for alias in rec.aliases:
                        self._alias_index.setdefault(alias, rec.nct_id)
            return self._alias_index.get(nct)

    def alias_map(self):
        with self._lock:
            return dict(self._extra_aliases)

    # -- mutations -----------------------------------------------------------
    def _changed(self):
        self._ordered = None
        self._alias_index = None
        self.generation += 1

    def put(self, data):
        """Adds or replaces a study; returns (nct, created)."""
        nct = validate_study(data)
        record = StudyRecord(copy.deepcopy(data))
        with self._lock:
            created = nct not in self._records
            self._records[nct] = record
            self._changed()
        return nct, created

    def patch(self, nct, set_values=None, delete_paths=(), touch=None):
        """Copies study `nct`, applies dotted-path edits; KeyError if absent.

        `touch` (YYYY-MM-DD) sets lastUpdatePostDateStruct.date and
        lastUpdateSubmitDate, as an upstream update would.
        """
        with self._lock:
            record = self._records.get(nct)
            if record is None:
                raise KeyError(nct)
            data = copy.deepcopy(record.data)
            if touch is not None:
                status = data["protocolSection"].setdefault("statusModule", {})
                status.setdefault("lastUpdatePostDateStruct", {})
                status["lastUpdatePostDateStruct"]["date"] = touch
                status["lastUpdateSubmitDate"] = touch
            for dotted, value in (set_values or {}).items():
                set_path(data, dotted, value)
            for dotted in delete_paths:
                set_path(data, dotted, None, delete=True)
            if validate_study(data) != nct:
                raise ValueError("patch may not change the nctId")
            self._records[nct] = StudyRecord(data)
            self._changed()

    def delete(self, nct):
        with self._lock:
            if self._records.pop(nct, None) is None:
                raise KeyError(nct)
            self._changed()

    def set_alias(self, old, new):
        """Makes `old` redirect to `new` (new=None removes the alias)."""
        with self._lock:
            if new is None:
                self._extra_aliases.pop(old, None)
            else:
                self._extra_aliases[old] = new

    def reset(self, aliases):
        with self._lock:
            self._records = dict(self._initial)
            self._extra_aliases = dict(aliases)
            self._changed()


# --------------------------------------------------------------------------
# Projection (fields=)


def build_trie(paths):
    """Paths -> nested dict; True marks 'take the whole subtree'."""
    trie = {}
    for path in paths:
        node = trie
        for key in path[:-1]:
            nxt = node.get(key)
            if nxt is True:
                break
            node = node.setdefault(key, {})
        else:
            node[path[-1]] = True
    return trie


def project(value, trie):
    """Keeps only the parts of `value` named by `trie`; None when nothing."""
    if trie is True:
        return value
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            if key in trie:
                kept = project(sub, trie[key])
                if kept is not None:
                    out[key] = kept
        return out or None
    if isinstance(value, list):
        out = [kept for kept in (project(v, trie) for v in value)
               if kept is not None]
        return out or None
    return None


# --------------------------------------------------------------------------
# CSV (format=csv): the API's column names, in the API's fixed order.


def _get(data, *keys, default=""):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _outcomes(ps, key):
    out = []
    for o in _get(ps, "outcomesModule", key, default=[]):
        parts = [o.get("measure", ""), o.get("description", ""),
                 o.get("timeFrame", "")]
        out.append(", ".join(p for p in parts if p))
    return "|".join(out)


def _design(ps):
    info = _get(ps, "designModule", "designInfo", default={})
    parts = []
    if "allocation" in info:
        parts.append("Allocation: " + info["allocation"])
    if "interventionModel" in info:
        parts.append("Intervention Model: " + info["interventionModel"])
    masking = info.get("maskingInfo", {})
    if "masking" in masking:
        who = masking.get("whoMasked", [])
        text = masking["masking"]
        if who:
            text += " (" + ", ".join(who) + ")"
        parts.append("Masking: " + text)
    if "primaryPurpose" in info:
        parts.append("Primary Purpose: " + info["primaryPurpose"])
    if "observationalModel" in info:
        parts.append("Observational Model: " + info["observationalModel"])
    if "timePerspective" in info:
        parts.append("Time Perspective: " + info["timePerspective"])
    return "|".join(parts)


def _locations(ps):
    out = []
    for loc in _get(ps, "contactsLocationsModule", "locations", default=[]):
        parts = [loc.get(k, "") for k in
                 ("facility", "city", "state", "zip", "country")]
        out.append(", ".join(p for p in parts if p))
    return "|".join(out)


def _other_ids(ps):
    ident = ps.get("identificationModule", {})
    ids = [_get(ident, "orgStudyIdInfo", "id")]
    ids += [s.get("id", "") for s in ident.get("secondaryIdInfos", [])]
    return "|".join(i for i in ids if i)


def _documents(study):
    docs = _get(study, "documentSection", "largeDocumentModule", "largeDocs",
                default=[])
    nct = study["protocolSection"]["identificationModule"]["nctId"]
    return "|".join(
        f"{d.get('label', '')}, https://cdn.clinicaltrials.gov/large-docs/"
        f"{nct[-2:]}/{nct}/{d.get('filename', '')}" for d in docs)


def _date(ps, struct):
    return _get(ps, "statusModule", struct, "date")


CSV_COLUMNS = [
    ("NCT Number", lambda s, ps: ps["identificationModule"]["nctId"]),
    ("Study Title", lambda s, ps: _get(ps, "identificationModule", "briefTitle")),
    ("Study URL", lambda s, ps: "https://clinicaltrials.gov/study/"
     + ps["identificationModule"]["nctId"]),
    ("Acronym", lambda s, ps: _get(ps, "identificationModule", "acronym")),
    ("Study Status", lambda s, ps: _get(ps, "statusModule", "overallStatus")),
    ("Brief Summary", lambda s, ps: _get(ps, "descriptionModule", "briefSummary")),
    ("Study Results", lambda s, ps: "YES" if s.get("hasResults") else "NO"),
    ("Conditions", lambda s, ps: "|".join(
        _get(ps, "conditionsModule", "conditions", default=[]))),
    ("Interventions", lambda s, ps: "|".join(
        f"{i.get('type', '')}: {i.get('name', '')}" for i in
        _get(ps, "armsInterventionsModule", "interventions", default=[]))),
    ("Primary Outcome Measures", lambda s, ps: _outcomes(ps, "primaryOutcomes")),
    ("Secondary Outcome Measures",
     lambda s, ps: _outcomes(ps, "secondaryOutcomes")),
    ("Other Outcome Measures", lambda s, ps: _outcomes(ps, "otherOutcomes")),
    ("Sponsor", lambda s, ps: _get(ps, "sponsorCollaboratorsModule",
                                   "leadSponsor", "name")),
    ("Collaborators", lambda s, ps: "|".join(
        c.get("name", "") for c in
        _get(ps, "sponsorCollaboratorsModule", "collaborators", default=[]))),
    ("Sex", lambda s, ps: _get(ps, "eligibilityModule", "sex")),
    ("Age", lambda s, ps: ", ".join(
        _get(ps, "eligibilityModule", "stdAges", default=[]))),
    ("Phases", lambda s, ps: "|".join(
        _get(ps, "designModule", "phases", default=[]))),
    ("Enrollment", lambda s, ps: str(_get(ps, "designModule", "enrollmentInfo",
                                          "count"))),
    ("Funder Type", lambda s, ps: _get(ps, "sponsorCollaboratorsModule",
                                       "leadSponsor", "class")),
    ("Study Type", lambda s, ps: _get(ps, "designModule", "studyType")),
    ("Study Design", lambda s, ps: _design(ps)),
    ("Other IDs", lambda s, ps: _other_ids(ps)),
    ("Start Date", lambda s, ps: _date(ps, "startDateStruct")),
    ("Primary Completion Date",
     lambda s, ps: _date(ps, "primaryCompletionDateStruct")),
    ("Completion Date", lambda s, ps: _date(ps, "completionDateStruct")),
    ("First Posted", lambda s, ps: _date(ps, "studyFirstPostDateStruct")),
    ("Results First Posted",
     lambda s, ps: _date(ps, "resultsFirstPostDateStruct")),
    ("Last Update Posted", lambda s, ps: _date(ps, "lastUpdatePostDateStruct")),
    ("Locations", lambda s, ps: _locations(ps)),
    ("Study Documents", lambda s, ps: _documents(s)),
]
CSV_COLUMN_NAMES = [name for name, _ in CSV_COLUMNS]


def csv_columns(fields):
    """fields= for CSV -> column list; ValueError names a bad column."""
    if not fields:
        return list(CSV_COLUMNS)
    wanted = set()
    by_lower = {name.lower(): name for name in CSV_COLUMN_NAMES}
    for item in fields:
        name = by_lower.get(item.strip().lower())
        if name is None:
            raise ValueError(
                f"Parameter 'fields' contains invalid CSV column name: "
                f"'{item.strip()}'")
        wanted.add(name)
    return [c for c in CSV_COLUMNS if c[0] in wanted]


def render_csv(records, columns, header):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow([name for name, _ in columns])
    for rec in records:
        study = rec.data
        ps = study.get("protocolSection", {})
        writer.writerow([fn(study, ps) for _, fn in columns])
    return buf.getvalue().encode("utf-8")


# --------------------------------------------------------------------------
# /studies/enums from the OpenAPI spec

# The spec lists enum values without their legacy (classic API) spelling.
# These are the classic spellings that a plain "capitalise and replace _"
# would get wrong; every other legacyValue is derived that way.
_LEGACY_OVERRIDES = {
    ("Status", "ACTIVE_NOT_RECRUITING"): "Active, not recruiting",
    ("Status", "UNKNOWN"): "Unknown status",
    ("RecruitmentStatus", "ACTIVE_NOT_RECRUITING"): "Active, not recruiting",
    ("Phase", "NA"): "Not Applicable",
    ("Phase", "EARLY_PHASE1"): "Early Phase 1",
    ("Phase", "PHASE1"): "Phase 1",
    ("Phase", "PHASE2"): "Phase 2",
    ("Phase", "PHASE3"): "Phase 3",
    ("Phase", "PHASE4"): "Phase 4",
    ("DesignAllocation", "NA"): "N/A",
    ("StandardAge", "OLDER_ADULT"): "Older Adult",
}


# Values that stay upper case (acronyms) in the classic spelling.
_LEGACY_ACRONYMS = {"NIH", "FDA", "VA", "CDC", "AHRQ", "SAMHSA", "FED",
                    "SAP", "ICF", "CSR", "ECT", "CTIS", "NA"}


def _legacy_value(enum_type, value):
    if (enum_type, value) in _LEGACY_OVERRIDES:
        return _LEGACY_OVERRIDES[(enum_type, value)]
    if value in _LEGACY_ACRONYMS:
        return value
    words = value.replace("_", " ").lower()
    return words[:1].upper() + words[1:]


def read_spec_enums(spec_path):
    """Enum schemas of components/schemas in an OpenAPI YAML file.

    A line-based reader for the layout of ctg-oas-v2*.yaml (the fake is
    standard-library only, so there is no YAML parser): a schema is a
    4-space-indented `Name:` under `components:`/`schemas:`, its values the
    `- "VALUE"` lines after a 6-space `enum:`. Returns {name: [values]}.
    """
    with open(spec_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    try:
        start = lines.index("components:")
    except ValueError:
        raise ValueError(f"{spec_path}: no components section")
    enums, name, current = {}, None, None
    for line in lines[start:]:
        m = re.match(r"^    ([A-Za-z0-9_]+):\s*$", line)
        if m:
            name, current = m.group(1), None
            continue
        if re.match(r"^      enum:\s*$", line):
            current = enums.setdefault(name, [])
            continue
        m = re.match(r'^      - "?([^"]*)"?\s*$', line)
        if m and current is not None:
            current.append(m.group(1))
        elif not line.startswith("      - "):
            current = None
    return enums


def build_enums(spec_path, catalog):
    """[{type, pieces, values: [{value, legacyValue}]}] for data enums."""
    spec = read_spec_enums(spec_path)
    out = []
    for enum_type, pieces in sorted(catalog.enum_types().items()):
        values = spec.get(enum_type)
        if not values:
            continue
        out.append({
            "type": enum_type,
            "pieces": pieces,
            "values": [{"value": v, "legacyValue": _legacy_value(enum_type, v)}
                       for v in values],
        })
    return out


# --------------------------------------------------------------------------
# /stats/size

_SIZE_RANGES_KB = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]


def size_stats(records):
    """GzipStats shape: sizes of the studies' compact JSON (bytes)."""
    sizes = sorted(((len(r.json_bytes), r.nct_id) for r in records),
                   key=lambda t: (-t[0], t[1]))
    total = len(sizes)
    ascending = sorted(s for s, _ in sizes)
    percentiles = {}
    for p in (5, 10, 25, 50, 75, 90, 95, 99):
        if ascending:
            idx = min(total - 1, max(0, int(round(p / 100 * total)) - 1))
            percentiles[str(p)] = ascending[idx]
    ranges = []
    for i, lo in enumerate(_SIZE_RANGES_KB):
        hi = _SIZE_RANGES_KB[i + 1] if i + 1 < len(_SIZE_RANGES_KB) else None
        count = sum(1 for s in ascending
                    if s >= lo * 1024 and (hi is None or s < hi * 1024))
        label = f"{lo}KB-{hi}KB" if hi is not None else f"{lo}KB+"
        ranges.append({"sizeRange": label, "studiesCount": count})
    return {
        "averageSizeBytes": (sum(ascending) // total) if total else 0,
        "largestStudies": [{"id": n, "sizeBytes": s} for s, n in sizes[:10]],
        "percentiles": percentiles,
        "ranges": ranges,
        "totalStudies": total,
    }
