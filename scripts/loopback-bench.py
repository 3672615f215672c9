#!/usr/bin/env python3
"""Calls per second over loopback UDP: sansip against SIPp (issue 6, part 4).

Six pairs, caller -> callee, run in turns at each rate so that drift on a shared machine
hits them alike:

    sipp -> sipp     SIPp's built-in uac and uas, -buff_size 8388608
    ours -> ours     softphone load call -> softphone load answer (the sans-IO UserAgent,
                     one socket, recvmmsg/sendmmsg, no async runtime)
    sipp -> ours     SIPp uac -> softphone load answer
    ours -> sipp     softphone load call -> SIPp uas
    async -> async   the same through the async Phone on a one-thread tokio runtime
                     (softphone load --engine phone): what the convenient API costs
    floor -> floor   the kernel's floor: the same seven datagrams per call, each the size of
                     the real message, over the same batched socket with no SIP at all
                     (softphone load --engine floor)

Each pair runs --runs times (3) at each rate; the figures are the medians, and a rate is
clean when most of its runs were. Each run places rate x --seconds calls (INVITE, 180, 200, ACK, BYE, 200; no media), all on
127.0.0.1. A run is clean when every call completed on both sides, nothing failed, nothing
was retransmitted, and the caller kept 95 % of the rate. A pair stops rising after its first
unclean rate. CPU is user + system time from wait4() for each process, divided by the calls.

Usage:
    python3 scripts/loopback-bench.py [--softphone PATH] [--rates 2000,5000,...] [--seconds 3]
                                      [--quick] [--markdown FILE] [--json FILE]
Without --softphone it builds the release binary with cargo. --quick runs one low rate
(CI proves the script works, not the figures).
"""
import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRS = [("sipp", "sipp"), ("ours", "ours"), ("sipp", "ours"), ("ours", "sipp"),
         ("async", "async"), ("floor", "floor")]
# The softphone's --engine for each of our kinds.
ENGINES = {"ours": "sans-io", "async": "phone", "floor": "floor"}
BUFF = "8388608"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def softphone_path(given):
    if given:
        return os.path.abspath(given)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "softphone"],
                   cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "softphone")


class Proc:
    """A child process whose CPU time is read from wait4() when it exits."""

    def __init__(self, argv, cwd):
        self.stdout = tempfile.TemporaryFile()
        self.stderr = tempfile.TemporaryFile()
        self.started = time.monotonic()
        self.p = subprocess.Popen(argv, cwd=cwd, stdout=self.stdout, stderr=self.stderr,
                                  stdin=subprocess.DEVNULL)

    def wait(self, limit):
        deadline = time.monotonic() + limit
        while True:
            pid, status, usage = os.wait4(self.p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.p.kill()
                pid, status, usage = os.wait4(self.p.pid, 0)
                break
            time.sleep(0.005)
        self.p.returncode = os.waitstatus_to_exitcode(status)
        self.wall = time.monotonic() - self.started
        self.cpu = usage.ru_utime + usage.ru_stime
        self.stdout.seek(0)
        self.output = self.stdout.read().decode(errors="replace")
        self.stderr.seek(0)
        self.errors = self.stderr.read().decode(errors="replace")[-2000:]
        return self


def sipp_stats(path):
    """The last line of a SIPp -trace_stat file: completed, failed, retransmissions."""
    try:
        with open(path) as f:
            rows = list(csv.DictReader(f, delimiter=";"))
    except FileNotFoundError:
        return None
    if not rows:
        return None
    last = rows[-1]
    return {
        "completed": int(last["SuccessfulCall(C)"]),
        "failed": int(last["FailedCall(C)"]),
        "retransmissions": int(last["Retransmissions(C)"]),
    }


def our_stats(output):
    for line in reversed(output.splitlines()):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        return {k: r[k] for k in ("completed", "failed", "retransmissions")}
    return None


def run_pair(caller, callee, rate, seconds, softphone, workdir):
    calls = max(1, int(rate * seconds))
    limit = int(seconds) + 30
    port, cport = free_port(), free_port()
    stat = {side: os.path.join(workdir, f"{side}-{caller}-{callee}-{rate}.csv")
            for side in ("uac", "uas")}
    for f in stat.values():
        if os.path.exists(f):
            os.remove(f)
    common = ["-i", "127.0.0.1", "-buff_size", BUFF, "-nostdin", "-timeout", f"{limit}s",
              "-trace_stat", "-fd", "1"]
    if callee == "sipp":
        argv = ["sipp", "-sn", "uas", "-p", str(port), "-m", str(calls), *common,
                "-stf", stat["uas"]]
    else:
        argv = [softphone, "load", "answer", "--bind", f"127.0.0.1:{port}",
                "--calls", str(calls), "--max-seconds", str(limit), "--engine", ENGINES[callee]]
    answering = Proc(argv, workdir)
    time.sleep(0.3)
    target = f"127.0.0.1:{port}"
    if caller == "sipp":
        argv = ["sipp", "-sn", "uac", target, "-p", str(cport), "-r", str(rate), "-m",
                str(calls), *common, "-stf", stat["uac"]]
    else:
        argv = [softphone, "load", "call", f"sip:load@{target}", "--rate", str(rate),
                "--calls", str(calls), "--bind", f"127.0.0.1:{cport}",
                "--max-seconds", str(limit), "--engine", ENGINES[caller]]
    calling = Proc(argv, workdir).wait(limit + 5)
    answering.wait(limit + 10)
    sides = {}
    for name, proc, kind, side in (("caller", calling, caller, "uac"),
                                   ("callee", answering, callee, "uas")):
        s = sipp_stats(stat[side]) if kind == "sipp" else our_stats(proc.output)
        if s is None:
            print(f"{name} ({kind}) gave no figures (exit {proc.p.returncode}): {proc.errors}",
                  file=sys.stderr)
            s = {"completed": 0, "failed": calls, "retransmissions": 0}
        s["cpu_s"] = proc.cpu
        sides[name] = s
    achieved = calls / calling.wall if calling.wall > 0 else 0.0
    clean = (all(s["completed"] == calls and s["failed"] == 0 and s["retransmissions"] == 0
                 for s in sides.values())
             and achieved >= 0.95 * rate)
    return {
        "caller": caller, "callee": callee, "rate": rate, "calls": calls,
        "achieved_cps": round(achieved, 1), "clean": clean,
        "caller_cpu_us": sides["caller"]["cpu_s"] * 1e6 / calls,
        "callee_cpu_us": sides["callee"]["cpu_s"] * 1e6 / calls,
        "sides": sides,
    }


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def run_median(caller, callee, rate, seconds, softphone, workdir, runs):
    """Runs a pair `runs` times at `rate`: the medians, clean when most runs were."""
    rs = [run_pair(caller, callee, rate, seconds, softphone, workdir) for _ in range(runs)]
    clean_runs = sum(1 for r in rs if r["clean"])
    return {
        "caller": caller, "callee": callee, "rate": rate, "calls": rs[0]["calls"],
        "runs": len(rs), "clean_runs": clean_runs, "clean": 2 * clean_runs > len(rs),
        "achieved_cps": median([r["achieved_cps"] for r in rs]),
        "caller_cpu_us": median([r["caller_cpu_us"] for r in rs]),
        "callee_cpu_us": median([r["callee_cpu_us"] for r in rs]),
        "both_cpu_us": median([r["caller_cpu_us"] + r["callee_cpu_us"] for r in rs]),
        "each": rs,
    }


def best(results, pair):
    clean = [r for r in results if (r["caller"], r["callee"]) == pair and r["clean"]]
    return max(clean, key=lambda r: r["rate"]) if clean else None


def at_rate(results, pair, rate):
    return next((r for r in results if (r["caller"], r["callee"]) == pair
                 and r["rate"] == rate and r["clean"]), None)


def met(ok):
    return "✓" if ok else "✗"


def markdown(results, rates, seconds, runs, cores):
    top = max(rates)
    lines = [
        f"Loopback UDP, {seconds:g} s of calls per run, {runs} run(s) per pair and rate "
        "(medians), rates tried: "
        f"{', '.join(str(r) for r in rates)} calls/s. "
        "CPU is user + system time per call (wait4), caller and callee processes. "
        "`async` is the async `Phone` on tokio; `floor` is no SIP at all, the same seven "
        "datagrams per call over the same batched socket (the kernel's floor).",
        "",
        "| caller → callee | highest clean rate (calls/s) | caller CPU µs/call | "
        "callee CPU µs/call | both µs/call |",
        "|---|---:|---:|---:|---:|",
    ]
    for pair in PAIRS:
        b = best(results, pair)
        name = f"{pair[0]} → {pair[1]}"
        if b is None:
            lines.append(f"| {name} | none clean | — | — | — |")
            continue
        capped = "+" if b["rate"] == top else ""
        lines.append(f"| {name} | {b['rate']}{capped} | {b['caller_cpu_us']:.1f} | "
                     f"{b['callee_cpu_us']:.1f} | {b['both_cpu_us']:.1f} |")
    lines += ["", "(+: clean at the highest rate tried.)", "",
              "| aim | sansip | peer | ratio | met |", "|---|---:|---:|---:|:---:|"]
    ours, sipp = best(results, ("ours", "ours")), best(results, ("sipp", "sipp"))
    floor = best(results, ("floor", "floor"))
    if not (ours and sipp):
        lines.append("| (a pair had no clean rate) | | | | |")
        return "\n".join(lines)
    ratio = ours["rate"] / sipp["rate"]
    lines.append(f"| highest clean rate, ≥ 2× SIPp | {ours['rate']} | {sipp['rate']} | "
                 f"{ratio:.2f}× | {met(ratio >= 2)} |")
    common = min(ours["rate"], sipp["rate"])
    o, s = at_rate(results, ("ours", "ours"), common), at_rate(results, ("sipp", "sipp"), common)
    notes = []
    if o and s:
        lines.append(f"| CPU per call, both sides, at {common}/s, ≤ 0.5× SIPp | "
                     f"{o['both_cpu_us']:.1f} µs | {s['both_cpu_us']:.1f} µs | "
                     f"{o['both_cpu_us'] / s['both_cpu_us']:.2f}× | "
                     f"{met(o['both_cpu_us'] <= 0.5 * s['both_cpu_us'])} |")
        f = at_rate(results, ("floor", "floor"), common)
        if f:
            lines.append(f"| CPU per call against the kernel's floor, at {common}/s | "
                         f"{o['both_cpu_us']:.1f} µs | {f['both_cpu_us']:.1f} µs (floor) | "
                         f"{o['both_cpu_us'] / f['both_cpu_us']:.2f}× | – |")
            budget = 0.5 * s["both_cpu_us"]
            room = (f"which leaves {budget - f['both_cpu_us']:.1f} µs for two SIP stacks"
                    if budget > f["both_cpu_us"] else
                    "less than the floor itself: no stack can meet that aim on this machine")
            notes.append(
                f"The floor (no SIP) costs {f['both_cpu_us']:.1f} µs per call, both sides, at "
                f"{common}/s: half of SIPp's CPU is {budget:.1f} µs, {room}; sansip spends "
                f"{o['both_cpu_us'] - f['both_cpu_us']:.1f} µs above the floor.")
    if floor:
        # Two processes on `cores` CPUs: at most cores·10⁶ µs of CPU per second.
        need = 2 * sipp["rate"]
        fits = cores * 1e6 / floor["both_cpu_us"]
        notes.append(
            f"At 2× SIPp ({need}/s) the floor alone would use "
            f"{need * floor['both_cpu_us'] / 1e6:.2f} of this machine's {cores} CPUs "
            f"(floor clean up to {floor['rate']}/s{' and beyond' if floor['rate'] == top else ''};"
            f" its CPU per call allows about {fits:,.0f} calls/s on {cores} CPUs).")
    a = at_rate(results, ("async", "async"), min(common, (best(results, ("async", "async")) or {"rate": 0})["rate"]))
    if a:
        b = at_rate(results, ("ours", "ours"), a["rate"])
        if b:
            lines.append(f"| async Phone (tokio) against the sans-IO loop, at {a['rate']}/s | "
                         f"{a['both_cpu_us']:.1f} µs | {b['both_cpu_us']:.1f} µs (sans-IO) | "
                         f"{a['both_cpu_us'] / b['both_cpu_us']:.2f}× | – |")
    return "\n".join(lines + [""] + notes)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--softphone")
    ap.add_argument("--rates", default="2000,5000,10000,15000,20000,30000,40000,60000")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--markdown")
    ap.add_argument("--json")
    args = ap.parse_args()
    rates = [200] if args.quick else [int(r) for r in args.rates.split(",")]
    seconds = 1.0 if args.quick else args.seconds
    runs = 1 if args.quick else max(1, args.runs)
    softphone = softphone_path(args.softphone)
    results, stopped = [], set()
    with tempfile.TemporaryDirectory(prefix="sansip-loopback-") as workdir:
        for rate in rates:
            for pair in PAIRS:
                if pair in stopped:
                    continue
                r = run_median(*pair, rate, seconds, softphone, workdir, runs)
                results.append(r)
                print(f"{pair[0]:>4} -> {pair[1]:<4} {rate:>6}/s: "
                      f"{'clean' if r['clean'] else 'NOT clean'}, {r['achieved_cps']:.0f}/s, "
                      f"caller {r['caller_cpu_us']:.1f} µs/call, callee {r['callee_cpu_us']:.1f}"
                      f" µs/call ({r['clean_runs']}/{r['runs']} runs clean); "
                      f"{json.dumps([x['sides'] for x in r['each']])}", file=sys.stderr)
                if not r["clean"]:
                    stopped.add(pair)
            if len(stopped) == len(PAIRS):
                break
    table = markdown(results, rates, seconds, runs, os.cpu_count() or 1)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    # Every pair must at least run clean at the quick rate: that is what CI checks.
    if args.quick and not all(best(results, p) for p in PAIRS):
        sys.exit("a pair did not run clean at the quick rate")


if __name__ == "__main__":
    main()
