#!/usr/bin/env python3
"""Filters ThreadSanitizer output down to the reports that involve tandem's own code.

Without `-Zbuild-std` (which needs the nightly `rust-src` component) std is not instrumented,
so TSan reports races inside std's channels and allocator that are not real. A report is kept
when one of the two racing accesses (not the allocation site) has a `tandem` frame.
Usage: ... cargo +nightly test ... 2>&1 | scripts/tsan-filter.py   (exit 1 if any is kept)
"""
import re
import sys

text = sys.stdin.read()
reports = re.findall(r"WARNING: ThreadSanitizer:.*?SUMMARY:[^\n]*", text, re.S)
kept = []
for report in reports:
    accesses = re.split(r"\n\s*(?:Location is|Mutex|Thread T\d+ .* created by)", report)[0]
    sections = re.split(r"\n\s*Previous ", accesses)
    if any(re.search(r"#\d+ (?:<)?tandem(?:_cli)?::", s) for s in sections):
        kept.append(report)
for line in text.splitlines():
    if line.startswith("test result") or "panicked" in line:
        print(line)
print(f"tsan: {len(reports)} report(s), {len(kept)} involving tandem code")
for report in kept:
    print(report)
    print()
sys.exit(1 if kept else 0)
