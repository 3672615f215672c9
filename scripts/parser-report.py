#!/usr/bin/env python3
"""Turns the parser benchmark's criterion output into a Markdown table of ratios.

Usage: cargo bench -p sansip-core --bench parser  &&  python3 scripts/parser-report.py
Reads target/criterion/<message>/<bench>/new/estimates.json (or $CARGO_TARGET_DIR/criterion).
Every figure is a ratio against a floor or a peer measured in the same run.
"""
import json
import os
import sys

target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
root = os.path.join(target, "criterion")
messages = ["invite_sdp", "ok_200", "register_auth", "bye"]


def ns(message, bench):
    path = os.path.join(root, message, bench.replace("/", "_"), "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]


rows = []
for m in messages:
    try:
        floor, memcpy = ns(m, "floor/line_scan"), ns(m, "floor/memcpy")
        ready, full = ns(m, "sansip/transaction_ready"), ns(m, "sansip/full_typed")
        write, rsip = ns(m, "sansip/write"), ns(m, "rsip/transaction_ready")
    except FileNotFoundError as e:
        sys.exit(f"missing benchmark output ({e.filename}); run the parser bench first")
    rows.append((m, floor, ready, full, write, memcpy, rsip))

print("| message | line-scan floor | transaction-ready | ×floor (≤ 4) | full typed | ×floor (≤ 11) "
      "| write | ×memcpy (≤ 10) | rsip ready | rsip ÷ ours (≥ 10) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def mark(ok):
    return "" if ok else " ✗"


for m, floor, ready, full, write, memcpy, rsip in rows:
    print(f"| {m} | {floor:.0f} ns | {ready:.0f} ns | {ready / floor:.1f}{mark(ready / floor <= 4)} "
          f"| {full:.0f} ns | {full / floor:.1f}{mark(full / floor <= 11)} | {write:.0f} ns "
          f"| {write / memcpy:.1f}{mark(write / memcpy <= 10)} | {rsip:.0f} ns "
          f"| {rsip / ready:.1f}{mark(rsip / ready >= 10)} |")
