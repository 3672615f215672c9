#!/usr/bin/env python3
"""Runs every sansip benchmark and writes one Markdown report (issue 6, part 6).

    python3 scripts/bench-report.py                  # full run, writes BENCHMARKS.md and
                                                     # the README's report section
    python3 scripts/bench-report.py --quick --out F  # CI: every step, minimal times, to F

Each figure stands beside a floor or a peer measured in the same run (the line-scan and
memcpy floors and rsip for the parser, bare str0m for media, SIPp for loopback calls), or
beside its aim where the issue sets an absolute one (transactions and calls per second,
bytes per unit). The machine is shared and noisy: compare ratios, not times.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
START, END = "<!-- bench-report:start -->", "<!-- bench-report:end -->"


def sh(argv, **kw):
    print("+", " ".join(argv), file=sys.stderr, flush=True)
    out = subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True, **kw)
    return out.stdout


def criterion_args(quick):
    # Short but real measurements in quick mode, so every table is still produced.
    if quick:
        return ["--warm-up-time", "0.2", "--measurement-time", "0.5", "--sample-size", "10"]
    return ["--warm-up-time", "2", "--measurement-time", "5"]


def estimate_ns(group, bench):
    path = os.path.join(TARGET, "criterion", group, bench, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]


def table_lines(text):
    """The Markdown tables a bench printed (a blank line between two), without criterion's
    own output."""
    out = []
    for line in text.splitlines():
        if line.startswith("|"):
            out.append(line)
        elif out and out[-1]:
            out.append("")
    return "\n".join(out).strip()


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    rustc = subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.strip()
    sipp = subprocess.run(["sipp", "-v"], capture_output=True, text=True)
    sipp = next((l.strip() for l in (sipp.stdout + sipp.stderr).splitlines() if "SIPp v" in l),
                "SIPp not found")
    distro = ""
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release") as f:
            m = re.search(r'PRETTY_NAME="([^"]+)"', f.read())
            distro = m.group(1) if m else ""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    return (f"{model}, {os.cpu_count()} CPUs, {mem}; {distro}, Linux {platform.release()}; "
            f"{rustc}; {sipp}; commit {commit}; "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")


def parser(quick):
    out = sh(["cargo", "bench", "-q", "-p", "sansip-core", "--bench", "parser", "--",
              *criterion_args(quick)])
    lines = out[out.index("allocations per operation"):].splitlines()[1:]
    allocs = "\n".join(lines[:1] + [l for l in lines[1:6] if re.match(r"^\w+\s+\d", l)])
    # The aim: a transaction-ready parse makes no allocation.
    ready = [int(l.split()[2]) for l in lines[1:6] if re.match(r"^\w+\s+\d", l)]
    worst = max(ready, default=0)
    alloc_aim = (f"Transaction-ready parse: at most {worst} allocation(s) a message (aim 0): "
                 f"{'✓' if worst == 0 else '✗'}.\n")
    table = sh([sys.executable, "scripts/parser-report.py"])
    return (
        "### Parser (criterion, `sansip-core` bench `parser`)\n\n"
        "Median time per message; ratios against the line-scan floor (memchr over the "
        "lines) and memcpy, and rsip 0.4 doing the transaction-ready parse. ✗ marks a "
        "ratio outside its aim.\n\n" + table.strip() + "\n\n"
        "Allocations per operation (counting allocator; rsip is the peer):\n\n```text\n" + allocs + "\n```\n\n"
        + alloc_aim)


def bench_executable(name):
    """Builds the sansip-core bench `name` (release) and returns its executable."""
    out = sh(["cargo", "bench", "-q", "-p", "sansip-core", "--bench", name, "--no-run",
              "--message-format=json"])
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == name \
                and msg.get("executable"):
            return msg["executable"]
    raise SystemExit(f"no executable for bench {name}")


def callgrind_ir(exe, *args):
    """Instructions executed by `exe args` under callgrind (deterministic)."""
    print("+ valgrind --tool=callgrind", exe, *args, file=sys.stderr, flush=True)
    run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          exe, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    m = re.search(r"Collected\s*:\s*(\d+)", run.stderr)
    if not m:
        raise SystemExit("callgrind printed no total:\n" + run.stderr[-2000:])
    return int(m.group(1))


def instructions(quick):
    """Instructions per sans-IO call (both sides) and per digest registration: callgrind
    counts N and 2N of each, and the difference is divided by N."""
    exe = bench_executable("instructions")
    n = 100 if quick else 1000
    rows = []
    for what, workload, aim in [("full call, default settings (INVITE, 100, reliable 180, "
                                 "PRACK, 200 with session timer, ACK, BYE, 200), both sides",
                                 "calls", 100_000),
                                ("the same call as SIPp's uac/uas make it (no PRACK, no "
                                 "session timer: 7 messages), both sides", "plain-calls",
                                 100_000),
                                ("digest registration (2 transactions), both sides",
                                 "registers", None)]:
        per = (callgrind_ir(exe, workload, str(2 * n)) - callgrind_ir(exe, workload, str(n))) / n
        rows.append((what, per, aim))
    lines = ["### Instructions per operation (callgrind; deterministic, the headline figure)", "",
             f"`valgrind --tool=callgrind` on the bench `instructions`: {n} and {2 * n} "
             "operations, the difference divided by " + f"{n}, so set-up and warm-up fall out.",
             "", "| what | instructions | aim | ratio | met |", "|---|---:|---:|---:|:---:|"]
    for what, per, aim in rows:
        if aim:
            lines.append(f"| {what} | {per:,.0f} | ≤ {aim:,} | {per / aim:.2f}× | "
                         f"{'✓' if per <= aim else '✗'} |")
        else:
            lines.append(f"| {what} | {per:,.0f} | – | – | – |")
    # The parser's ratio to its floor, counted rather than timed: one round frames the
    # parser bench's four messages and reads their transaction keys; the floor finds
    # every line end and colon of the same four.
    frame, floor = ((callgrind_ir(exe, w, str(2 * n)) - callgrind_ir(exe, w, str(n))) / n
                    for w in ("frame", "line-scan"))
    ratio = frame / floor
    lines.append(f"| transaction-ready parse of the parser bench's four messages, per message "
                 f"(floor: the line scan, {floor / 4:,.0f}) | {frame / 4:,.0f} | ≤ 4× the floor "
                 f"| {ratio:.2f}× | {'✓' if ratio <= 4 else '✗'} |")
    return "\n".join(lines) + "\n"


def throughput(quick):
    sh(["cargo", "bench", "-q", "-p", "sansip-core", "--bench", "throughput", "--",
        *criterion_args(quick)])
    tx = 2 / (estimate_ns("sans-io", "register_digest_transactions") * 1e-9)
    calls = 1 / (estimate_ns("sans-io", "calls") * 1e-9)
    rows = [("digest registrations, transactions/s", tx, 400_000),
            ("full calls (INVITE…BYE 200), calls/s", calls, 100_000)]
    lines = ["### Sans-IO throughput (criterion, one thread, no sockets)", "",
             "The issue sets absolute aims here; the ratio is figure ÷ aim.", "",
             "| what | figure | aim | ratio |", "|---|---:|---:|---:|"]
    for what, v, aim in rows:
        lines.append(f"| {what} | {v:,.0f} | {aim:,} | {v / aim:.2f}× |")
    return "\n".join(lines) + "\n"


def memory(quick):
    out = sh(["cargo", "bench", "-q", "-p", "sansip-core", "--bench", "memory", "--"]
             + (["--quick"] if quick else []))
    return ("### Memory (counting allocator, `sansip-core` bench `memory`)\n\n"
            + table_lines(out) + "\n")


def media(quick):
    out = sh(["cargo", "bench", "-q", "-p", "sansip-media", "--bench", "media", "--"]
             + (["--quick"] if quick else criterion_args(False)))
    table = table_lines(out)
    crit = ""
    if not quick:
        phone = estimate_ns("media_frame", "sansip_phone")
        bare = estimate_ns("media_frame", "bare_str0m")
        crit = (f"\nCriterion, the same packet both ways (median per frame): sansip MediaAgent "
                f"{phone / 1000:.2f} µs, bare str0m {bare / 1000:.2f} µs, "
                f"ratio {phone / bare:.2f}× (aim ≤ 1.10×).\n")
    return ("### Media (`sansip-media` bench `media`: the MediaAgent's media path against a bare "
            "str0m pair, PCMU, one thread, no sockets)\n\n" + table + "\n" + crit)


def loopback(quick):
    sh(["cargo", "build", "-q", "--release", "--bin", "softphone"])
    softphone = os.path.join(TARGET, "release", "softphone")
    out = sh([sys.executable, "scripts/loopback-bench.py", "--softphone", softphone]
             + (["--quick"] if quick else []))
    return ("### Calls per second over loopback UDP (`scripts/loopback-bench.py`: "
            "`softphone load` against SIPp 3.6 built-in uac/uas)\n\n" + out.strip() + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="minimal times (CI)")
    ap.add_argument("--out", help="report file (default: BENCHMARKS.md, and the README)")
    args = ap.parse_args()
    sections = [instructions(args.quick), parser(args.quick), throughput(args.quick),
                memory(args.quick), media(args.quick), loopback(args.quick)]
    report = ("## Benchmark report\n\n"
              f"Machine: {machine()}.\n\n"
              "Produced by `python3 scripts/bench-report.py`"
              + (" in quick mode (figures not meaningful)" if args.quick else "") + ".\n\n"
              + "\n".join(sections))
    out = args.out or os.path.join(ROOT, "BENCHMARKS.md")
    with open(out, "w") as f:
        f.write(report)
    print(report)
    if args.out is None:
        readme = os.path.join(ROOT, "README.md")
        with open(readme) as f:
            text = f.read()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            body = report.replace("## Benchmark report", "### Latest benchmark report", 1)
            body = body.replace("\n### ", "\n#### ")
            with open(readme, "w") as f:
                f.write(head + START + "\n" + body + "\n" + END + tail)


if __name__ == "__main__":
    main()
