#!/usr/bin/env python3
"""Replaces, in target/bench-results/criterion.txt, every id that a partial
run (`bash benches/run.sh REGEX`, written to criterion-partial.txt) measured
again, so a few cells can be re-run after a fix without the full suite.

Usage: python3 benches/merge.py && python3 benches/report.py
"""
import re
from pathlib import Path

res = Path(__file__).resolve().parent.parent / "target/bench-results"
part = (res / "criterion-partial.txt").read_text()
ids = {i for i in re.findall(r"^(\S+)\s", part, re.M) if "/" in i}
out, skip = [], False
for line in (res / "criterion.txt").read_text().splitlines():
    m = re.match(r"^(\S+)", line)
    if m and m.group(1) in ids:
        skip = True
        continue
    if skip and line.startswith(" "):
        continue
    skip = False
    out.append(line)
(res / "criterion.txt").write_text("\n".join(out).rstrip("\n") + "\n" + part)
print(f"replaced {len(ids)} ids")
