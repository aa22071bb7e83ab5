#!/usr/bin/python3
"""Unit tests for validate.py: each broken record must be reported.

Builds small gold files from the first valid line of gold.jsonl (so the tests
follow the real schema), breaks one thing at a time, and checks the
validator names that problem. Stdlib only; needs the shared data:
  test_validate.py --shared <TRIALMATCH_SHARED_DATA_DIR>
"""

import copy
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import validate  # noqa: E402

SHARED = None


def first_with(pred):
    with open(os.path.join(HERE, "gold.jsonl"), encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if pred(rec):
                return rec
    raise AssertionError("no gold record matches the predicate")


class ValidateTest(unittest.TestCase):
    def run_on(self, records):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "gold.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                for r in records:
                    f.write((r if isinstance(r, str) else
                             json.dumps(r, ensure_ascii=False)) + "\n")
            out = io.StringIO()
            with redirect_stdout(out):
                rc = validate.main(["--shared", SHARED, "--gold", path])
        return rc, out.getvalue()

    def assertRejected(self, record, fragment):
        rc, out = self.run_on([record])
        self.assertEqual(rc, 1, out)
        self.assertIn(fragment, out)

    def setUp(self):
        self.lab = copy.deepcopy(first_with(lambda r: any(
            l["unit"] == "/mm3" for l in r["labs"])))
        self.i = next(i for i, l in enumerate(self.lab["labs"])
                      if l["unit"] == "/mm3")

    def test_real_record_passes(self):
        rc, out = self.run_on([self.lab])
        self.assertEqual(rc, 0, out)

    def test_unescape_undoes_markdown_escapes(self):
        self.assertEqual(validate.unescape(r"ANC \>= 1500/mm\^3"),
                         "ANC >= 1500/mm^3")

    def test_age_years(self):
        self.assertEqual(validate.age_years("18 Years"), 18)
        self.assertAlmostEqual(validate.age_years("6 Months"), 0.5)
        self.assertIsNone(validate.age_years(None))
        with self.assertRaises(ValueError):
            validate.age_years("N/A")

    def test_wrong_canonical_value(self):
        self.lab["labs"][self.i]["canonical_value"] *= 1000
        self.assertRejected(self.lab, "inconsistent with")

    def test_unknown_quantity(self):
        self.lab["labs"][self.i]["quantity"] = "ldl"
        self.assertRejected(self.lab, "unknown quantity 'ldl'")

    def test_unit_not_allowed(self):
        self.lab["labs"][self.i]["unit"] = "mg/dL"
        self.assertRejected(self.lab, "not allowed for")

    def test_uln_flag_must_match_unit(self):
        self.lab["labs"][self.i]["relative_to_uln"] = True
        self.assertRejected(self.lab, "relative_to_uln")

    def test_evidence_must_be_in_text(self):
        self.lab["labs"][self.i]["evidence"] = "ANC >= 9999 per nothing"
        self.assertRejected(self.lab, "evidence not found")

    def test_expected_age_follows_structured(self):
        rec = copy.deepcopy(first_with(
            lambda r: r["structured"]["min_age_years"] == 18))
        rec["expected_age"]["min_years"] = 21
        self.assertRejected(rec, "must equal the structured bound")

    def test_structured_must_copy_registry(self):
        rec = copy.deepcopy(self.lab)
        rec["structured"]["sex"] = "MALE" if rec["structured"][
            "sex"] != "MALE" else "FEMALE"
        self.assertRejected(rec, "structured.sex")

    def test_pregnancy_evidence_required(self):
        rec = copy.deepcopy(self.lab)
        rec["pregnancy_exclusion"] = True
        rec["pregnancy_evidence"] = None
        self.assertRejected(rec, "pregnancy_evidence")

    def test_performance_range(self):
        rec = copy.deepcopy(first_with(lambda r: any(
            p["scale"] == "ecog" for p in r["performance"])))
        p = next(p for p in rec["performance"] if p["scale"] == "ecog")
        p["high"] = 7
        self.assertRejected(rec, "need 0 <= low <= high <= 5")

    def test_unknown_key(self):
        self.lab["labs"][self.i]["comparator_text"] = "at least"
        self.assertRejected(self.lab, "unknown key 'comparator_text'")

    def test_duplicate_and_missing_study(self):
        rc, out = self.run_on([self.lab, self.lab])
        self.assertIn("duplicate nct_id", out)
        missing = copy.deepcopy(self.lab)
        missing["nct_id"] = "NCT00000000"
        self.assertRejected(missing, "cannot read study record")

    def test_invalid_json_line(self):
        rc, out = self.run_on(["{not json"])
        self.assertEqual(rc, 1)
        self.assertIn("invalid JSON", out)


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--shared" in args:
        i = args.index("--shared")
        SHARED = args[i + 1]
        del args[i:i + 2]
    SHARED = SHARED or os.environ.get("TRIALMATCH_SHARED_DATA_DIR")
    if not SHARED or not os.path.isdir(os.path.join(SHARED, "ctgov_v2")):
        print("test_validate.py: need --shared <shared data dir>",
              file=sys.stderr)
        sys.exit(2)
    unittest.main(argv=[sys.argv[0]] + args)
