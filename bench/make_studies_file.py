#!/usr/bin/env python3
"""Writes a large studies file for import benchmarks, streaming.

The recorded corpus (ctgov_v2/studies/NCT*.json) is compacted once and
written COPIES times — as a JSON array (the website's ctg-studies.json
shape) or as JSON Lines — each copy with fresh NCT ids (NCT9xxxxxxx), so an
import stores every record instead of finding duplicates. Memory use is the
compacted corpus (~30 MB), whatever the output size.

  make_studies_file.py --data-dir ../shared/data/ctgov_v2 --out big.json \\
      --target-bytes 1000000000 [--format array|jsonl]
"""
import argparse
import glob
import json
import math
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=("array", "jsonl"), default="array")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--copies", type=int)
    group.add_argument("--target-bytes", type=int)
    args = ap.parse_args()

    # Each study as (text before the id, text after it), compact.
    parts = []
    for path in sorted(glob.glob(os.path.join(args.data_dir, "studies", "NCT*.json"))):
        with open(path, encoding="utf-8") as f:
            study = json.load(f)
        nct = study["protocolSection"]["identificationModule"]["nctId"]
        text = json.dumps(study, separators=(",", ":"), ensure_ascii=False)
        key = '"nctId":"%s"' % nct
        at = text.index(key) + len('"nctId":"')  # identificationModule's
        parts.append((text[:at], text[at + len(nct):]))
    if not parts:
        sys.exit("no studies under " + args.data_dir)
    corpus_bytes = sum(len(a.encode()) + len(b.encode()) + 13 for a, b in parts)
    copies = args.copies or max(1, math.ceil((args.target_bytes or corpus_bytes) / corpus_bytes))
    if copies * len(parts) > 9_999_999:
        sys.exit("too many copies for unique NCT9xxxxxxx ids")

    n = 0
    with open(args.out, "w", encoding="utf-8") as out:
        if args.format == "array":
            out.write("[\n")
        for _ in range(copies):
            for before, after in parts:
                if args.format == "array" and n > 0:
                    out.write(",\n")
                out.write(before)
                out.write("NCT9%07d" % n)
                out.write(after)
                if args.format == "jsonl":
                    out.write("\n")
                n += 1
        if args.format == "array":
            out.write("\n]\n")
    print("%s: %d studies (%d copies of %d), %d bytes"
          % (args.out, n, copies, len(parts), os.path.getsize(args.out)))


if __name__ == "__main__":
    main()
