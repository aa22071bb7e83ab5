#!/usr/bin/python3
"""Validates the hand-labelled eligibility gold set (gold.jsonl).

Checks, for every line: the schema (keys, types, allowed values), that the
study exists in the recorded ClinicalTrials.gov data, that `structured`
copies the registry's eligibility fields, that `expected_age` /
`expected_sex` follow the rules in README.md, that every quantity, unit and
comparator is allowed, that `canonical_value` agrees with the unit
conversions, and that every evidence snippet is a substring of the study's
eligibilityCriteria after undoing markdown escapes.

Stdlib only. Exit status 0 when valid, 1 with one line per problem
otherwise, 2 on bad usage or missing data.

Usage:
  validate.py --shared <TRIALMATCH_SHARED_DATA_DIR> [--gold <gold.jsonl>]
"""

import argparse
import json
import os
import re
import sys

FIELDS = {
    "oncology", "diabetes_endocrine", "cardiology", "pediatrics",
    "healthy_volunteers", "sex_restricted", "renal", "hepatic",
    "infectious", "neuro", "other",
}
POLARITIES = {"inclusion", "exclusion"}
COMPARATORS = {">=", ">", "<=", "<", "="}
SEXES = {"ALL", "FEMALE", "MALE"}
SCALE_MAX = {"ecog": 5, "karnofsky": 100, "lansky": 100}

# Unit conversions to the canonical units of src/criteria/compiled_study.h.
# quantity -> {unit as recorded -> function(value) -> canonical value}.


def _same(v):
    return v


def _per_ul(v):  # cells per µL (= per mm3) -> 10^9/L
    return v / 1000.0


def _count_no_unit(v):  # unit not written: per µL when >= 1000
    return v / 1000.0 if v >= 1000 else v


_COUNTS = {"10^9/L": _same, "/mm3": _per_ul, "/µL": _per_ul,
           "/mcL": _per_ul, "": _count_no_unit}
_ULN = {"xULN": _same}

UNITS = {
    "hba1c": {"%": _same, "mmol/mol": lambda v: v * 0.09148 + 2.152,
              "fraction": lambda v: v * 100.0},
    "egfr": {"mL/min/1.73m2": _same, "mL/min": _same},
    "creatinine": {"mg/dL": _same, "µmol/L": lambda v: v / 88.42, **_ULN},
    "creatinine_clearance": {"mL/min": _same, "mL/min/1.73m2": _same},
    "bmi": {"kg/m2": _same},
    "hemoglobin": {"g/dL": _same, "g/L": lambda v: v / 10.0,
                   "mmol/L": lambda v: v * 1.611},
    "platelets": dict(_COUNTS),
    "anc": dict(_COUNTS),
    "wbc": dict(_COUNTS),
    "bilirubin_total": {"mg/dL": _same, "µmol/L": lambda v: v / 17.1,
                        **_ULN},
    "ast": {"U/L": _same, **_ULN},
    "alt": {"U/L": _same, **_ULN},
    "inr": {"ratio": _same, **_ULN},
    "lvef": {"%": _same},
    "systolic_bp": {"mmHg": _same},
    "diastolic_bp": {"mmHg": _same},
    "fasting_glucose": {"mg/dL": _same, "mmol/L": lambda v: v * 18.016,
                        **_ULN},
    "weight": {"kg": _same, "lb": lambda v: v * 0.45359237},
}

TOP_KEYS = {
    "nct_id": str, "field": str, "structured": dict, "text_age": list,
    "expected_age": dict, "expected_sex": str, "labs": list,
    "performance": list, "pregnancy_exclusion": bool,
    "pregnancy_evidence": (str, type(None)), "breastfeeding_exclusion": bool,
    "breastfeeding_evidence": (str, type(None)), "notes": str,
}
AGE_KEYS = {"polarity", "low_years", "high_years", "evidence",
            "low_inclusive", "high_inclusive", "conditional"}
LAB_KEYS = {"quantity", "polarity", "comparator", "value", "unit",
            "canonical_value", "relative_to_uln", "evidence", "conditional",
            "alternative_group", "exception", "uncertain"}
LAB_REQUIRED = {"quantity", "polarity", "comparator", "value", "unit",
                "canonical_value", "relative_to_uln", "evidence"}
PERF_KEYS = {"scale", "polarity", "low", "high", "evidence", "conditional",
             "alternative_group", "low_inclusive", "high_inclusive"}
PERF_REQUIRED = {"scale", "polarity", "low", "high", "evidence"}

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+(year|month|week|day|hour|minute)s?\s*$",
                  re.IGNORECASE)
_YEARS_PER = {"year": 1.0, "month": 1 / 12.0, "week": 7 / 365.25,
              "day": 1 / 365.25, "hour": 1 / (365.25 * 24),
              "minute": 1 / (365.25 * 24 * 60)}


def unescape(text):
    """Undoes CommonMark backslash escapes ('\\>=' -> '>=')."""
    return _ESCAPE.sub(r"\1", text)


def age_years(text):
    """'18 Years' -> 18.0; None for an absent field; raises on junk."""
    if text is None:
        return None
    m = _AGE.match(text)
    if not m:
        raise ValueError("unparseable age %r" % text)
    return float(m.group(1)) * _YEARS_PER[m.group(2).lower()]


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= max(1e-9, 1e-3 * abs(b), 5e-5)


def close_conversion(got, want):
    return abs(got - want) <= max(0.005, 0.005 * abs(want))


class Checker:
    def __init__(self, shared):
        self.studies_dir = os.path.join(shared, "ctgov_v2", "studies")
        self.errors = []

    def err(self, where, msg):
        self.errors.append("%s: %s" % (where, msg))

    def check_keys(self, where, obj, allowed, required):
        for k in sorted(set(obj) - allowed):
            self.err(where, "unknown key %r" % k)
        for k in sorted(required - set(obj)):
            self.err(where, "missing key %r" % k)

    def check_optional_flags(self, where, obj):
        for k in ("conditional", "uncertain", "low_inclusive",
                  "high_inclusive"):
            if k in obj and not isinstance(obj[k], bool):
                self.err(where, "%s must be a boolean" % k)
        for k in ("alternative_group", "exception"):
            if k in obj and not (isinstance(obj[k], str) and obj[k]):
                self.err(where, "%s must be a non-empty string" % k)

    def check_evidence(self, where, evidence, text):
        if not isinstance(evidence, str) or not evidence.strip():
            self.err(where, "evidence must be a non-empty string")
        elif evidence not in text:
            self.err(where, "evidence not found in eligibilityCriteria: %r"
                     % evidence)

    def check_line(self, lineno, line, seen):
        where = "line %d" % lineno
        try:
            rec = json.loads(line)
        except ValueError as e:
            self.err(where, "invalid JSON: %s" % e)
            return
        if not isinstance(rec, dict):
            self.err(where, "not a JSON object")
            return
        nct = rec.get("nct_id")
        if isinstance(nct, str):
            where = "line %d (%s)" % (lineno, nct)
        self.check_keys(where, rec, set(TOP_KEYS), set(TOP_KEYS))
        for k, t in TOP_KEYS.items():
            if k in rec and not isinstance(rec[k], t):
                self.err(where, "%s has the wrong type" % k)
        if not isinstance(nct, str) or not re.fullmatch(r"NCT\d{8}", nct):
            self.err(where, "bad nct_id %r" % nct)
            return
        if nct in seen:
            self.err(where, "duplicate nct_id (also line %d)" % seen[nct])
        seen[nct] = lineno
        if rec.get("field") not in FIELDS:
            self.err(where, "field %r not one of %s"
                     % (rec.get("field"), sorted(FIELDS)))

        path = os.path.join(self.studies_dir, nct + ".json")
        try:
            with open(path, encoding="utf-8") as f:
                study = json.load(f)
        except (OSError, ValueError) as e:
            self.err(where, "cannot read study record %s: %s" % (path, e))
            return
        elig = study.get("protocolSection", {}).get("eligibilityModule", {})
        text = unescape(elig.get("eligibilityCriteria", ""))

        self.check_structured(where, rec, elig)
        for i, a in enumerate(rec.get("text_age") or []):
            self.check_age(where + " text_age[%d]" % i, a, text)
        for i, lab in enumerate(rec.get("labs") or []):
            self.check_lab(where + " labs[%d]" % i, lab, text)
        for i, p in enumerate(rec.get("performance") or []):
            self.check_perf(where + " performance[%d]" % i, p, text)
        for flag, ev in (("pregnancy_exclusion", "pregnancy_evidence"),
                         ("breastfeeding_exclusion",
                          "breastfeeding_evidence")):
            if rec.get(flag) is True:
                self.check_evidence(where + " " + ev, rec.get(ev), text)
            elif rec.get(ev) is not None:
                self.err(where, "%s set while %s is false" % (ev, flag))

    def check_structured(self, where, rec, elig):
        st = rec.get("structured")
        if not isinstance(st, dict):
            return
        self.check_keys(where + " structured", st,
                        {"min_age_years", "max_age_years", "sex",
                         "healthy_volunteers"},
                        {"min_age_years", "max_age_years", "sex",
                         "healthy_volunteers"})
        try:
            want_min = age_years(elig.get("minimumAge"))
            want_max = age_years(elig.get("maximumAge"))
        except ValueError as e:
            self.err(where, "registry age: %s" % e)
            return
        if not close(st.get("min_age_years"), want_min):
            self.err(where, "structured.min_age_years %r != registry %r (%r)"
                     % (st.get("min_age_years"), want_min,
                        elig.get("minimumAge")))
        if not close(st.get("max_age_years"), want_max):
            self.err(where, "structured.max_age_years %r != registry %r (%r)"
                     % (st.get("max_age_years"), want_max,
                        elig.get("maximumAge")))
        if st.get("sex") != elig.get("sex"):
            self.err(where, "structured.sex %r != registry %r"
                     % (st.get("sex"), elig.get("sex")))
        if st.get("healthy_volunteers") != elig.get("healthyVolunteers"):
            self.err(where, "structured.healthy_volunteers %r != registry %r"
                     % (st.get("healthy_volunteers"),
                        elig.get("healthyVolunteers")))
        # expected_sex: structured sex, absent -> ALL.
        want_sex = elig.get("sex") or "ALL"
        if rec.get("expected_sex") not in SEXES:
            self.err(where, "expected_sex %r not in %s"
                     % (rec.get("expected_sex"), sorted(SEXES)))
        elif rec.get("expected_sex") != want_sex:
            self.err(where, "expected_sex %r != %r"
                     % (rec.get("expected_sex"), want_sex))
        # expected_age: the structured bound wins whenever it exists.
        ea = rec.get("expected_age")
        if not isinstance(ea, dict):
            return
        self.check_keys(where + " expected_age", ea,
                        {"min_years", "max_years"}, {"min_years", "max_years"})
        for key, want in (("min_years", want_min), ("max_years", want_max)):
            got = ea.get(key)
            if got is not None and not is_number(got):
                self.err(where, "expected_age.%s must be a number or null"
                         % key)
            elif want is not None and not close(got, want):
                self.err(where, "expected_age.%s %r must equal the structured"
                         " bound %r" % (key, got, want))
            elif want is None and got is not None and not any(
                    close(got, a.get(b)) for a in rec.get("text_age") or []
                    if isinstance(a, dict)
                    for b in ("low_years", "high_years")):
                self.err(where, "expected_age.%s %r has no structured bound "
                         "and matches no text_age bound" % (key, got))

    def check_age(self, where, a, text):
        if not isinstance(a, dict):
            self.err(where, "not an object")
            return
        self.check_keys(where, a, AGE_KEYS,
                        {"polarity", "low_years", "high_years", "evidence"})
        self.check_optional_flags(where, a)
        if a.get("polarity") not in POLARITIES:
            self.err(where, "bad polarity %r" % a.get("polarity"))
        lo, hi = a.get("low_years"), a.get("high_years")
        for name, v in (("low_years", lo), ("high_years", hi)):
            if v is not None and (not is_number(v) or v < 0 or v > 130):
                self.err(where, "%s %r out of range" % (name, v))
        if lo is None and hi is None:
            self.err(where, "needs low_years or high_years")
        if is_number(lo) and is_number(hi) and lo > hi:
            self.err(where, "low_years > high_years")
        self.check_evidence(where, a.get("evidence"), text)

    def check_lab(self, where, lab, text):
        if not isinstance(lab, dict):
            self.err(where, "not an object")
            return
        self.check_keys(where, lab, LAB_KEYS, LAB_REQUIRED)
        self.check_optional_flags(where, lab)
        q, unit = lab.get("quantity"), lab.get("unit")
        if q not in UNITS:
            self.err(where, "unknown quantity %r" % q)
            return
        if lab.get("polarity") not in POLARITIES:
            self.err(where, "bad polarity %r" % lab.get("polarity"))
        if lab.get("comparator") not in COMPARATORS:
            self.err(where, "bad comparator %r" % lab.get("comparator"))
        if lab.get("relative_to_uln") is not (unit == "xULN"):
            self.err(where, "relative_to_uln must be true exactly when "
                     "unit is 'xULN'")
        value, canon = lab.get("value"), lab.get("canonical_value")
        if not is_number(value) or not is_number(canon):
            self.err(where, "value and canonical_value must be numbers")
        elif unit not in UNITS[q]:
            self.err(where, "unit %r not allowed for %s (allowed: %s)"
                     % (unit, q, sorted(UNITS[q])))
        else:
            want = UNITS[q][unit](value)
            if not close_conversion(canon, want):
                self.err(where, "canonical_value %r inconsistent with %r %s "
                         "(expected %.4g)" % (canon, value, unit, want))
        self.check_evidence(where, lab.get("evidence"), text)

    def check_perf(self, where, p, text):
        if not isinstance(p, dict):
            self.err(where, "not an object")
            return
        self.check_keys(where, p, PERF_KEYS, PERF_REQUIRED)
        self.check_optional_flags(where, p)
        scale = p.get("scale")
        if scale not in SCALE_MAX:
            self.err(where, "unknown scale %r" % scale)
            return
        if p.get("polarity") not in POLARITIES:
            self.err(where, "bad polarity %r" % p.get("polarity"))
        lo, hi = p.get("low"), p.get("high")
        if not (is_number(lo) and is_number(hi)
                and 0 <= lo <= hi <= SCALE_MAX[scale]):
            self.err(where, "need 0 <= low <= high <= %d for %s"
                     % (SCALE_MAX[scale], scale))
        self.check_evidence(where, p.get("evidence"), text)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.environ.get(
        "TRIALMATCH_SHARED_DATA_DIR"),
        help="the shared data dir (holds ctgov_v2/studies)")
    ap.add_argument("--gold", default=os.path.join(here, "gold.jsonl"))
    args = ap.parse_args(argv)
    if not args.shared or not os.path.isdir(
            os.path.join(args.shared, "ctgov_v2", "studies")):
        print("validate.py: shared data not found (--shared %r): need "
              "ctgov_v2/studies" % args.shared, file=sys.stderr)
        return 2
    try:
        with open(args.gold, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        print("validate.py: %s" % e, file=sys.stderr)
        return 2

    checker = Checker(args.shared)
    seen = {}
    for n, line in enumerate(lines, 1):
        if line.strip():
            checker.check_line(n, line, seen)
    if not seen:
        checker.err(args.gold, "no studies")
    for e in checker.errors:
        print(e)
    print("%s: %d studies, %d problems" % (args.gold, len(seen),
                                          len(checker.errors)))
    return 1 if checker.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
