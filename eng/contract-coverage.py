#!/usr/bin/env python3
"""Which answers do the documents promise that no test produced?

Reads artifacts/contract/*.json (written by the contract check, Library.TestSupport/Contract,
when a test process ends: the (operation, status) pairs each document promises and the pairs the
tests received), unions them over every test project, and lists, per document, the promised
pairs never seen. Reports only (exit 0) unless --gate is given (exit 1 when any pair is unseen).

    python3 eng/contract-coverage.py [--gate] [artifacts/contract]
"""
import glob
import json
import os
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
gate = "--gate" in sys.argv
folder = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "artifacts", "contract")
files = sorted(glob.glob(os.path.join(folder, "*.json")))
if not files:
    print(f"[contract] no reports in {folder}: run the tests first", file=sys.stderr)
    sys.exit(1 if gate else 0)

promised, seen, violations = {}, set(), []
for path in files:
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    for p in report.get("promised", []):
        promised.setdefault(p["document"], set()).add((p["operation"], p["status"]))
    for s in report.get("seen", []):
        # operationIds are unique over the whole API: a 429 the gateway's merged document saw
        # counts for the service's own document too.
        seen.add((s["operation"], s["status"]))
    violations += [f"{report.get('project')}: {v}" for v in report.get("violations", [])]

total_unseen = 0
for document in sorted(promised):
    pairs = promised[document]
    unseen = sorted(p for p in pairs if p not in seen)
    total_unseen += len(unseen)
    print(f"[contract] {document}: {len(pairs) - len(unseen)} of {len(pairs)} promised answers produced by a test")
    for operation, status in unseen:
        print(f"  never seen: {operation} {status}")
print(f"[contract] {len(violations)} violations recorded ({', '.join(os.path.basename(f) for f in files)})")
for v in violations[:50]:
    print(f"  {v}")
sys.exit(1 if gate and (total_unseen or violations) else 0)
