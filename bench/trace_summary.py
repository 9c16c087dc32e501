#!/usr/bin/env python3
"""Where a training step's time goes, from a chrome://tracing file of
libtorch's profiler (mnist_bench's MNIST_BENCH_TRACE, torch_reference.py's
--trace): each operator's own time (its span less the operators it called),
summed over the trace, per step, largest first.

Usage: trace_summary.py TRACE STEPS [TOP (default 25)]
"""
import collections
import json
import sys


def main():
    path, steps = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    events = json.load(open(path))
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    spans = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e and e.get("cat", "cpu_op") in ("cpu_op", "Operator"):
            spans[e.get("tid")].append((float(e["ts"]), float(e["dur"]), e["name"]))
    own = collections.Counter()
    calls = collections.Counter()
    for tid_spans in spans.values():
        tid_spans.sort(key=lambda s: (s[0], -s[1]))
        stack = []  # [end, name, own]
        for ts, dur, name in tid_spans:
            while stack and stack[-1][0] <= ts:
                end, n, o = stack.pop()
                own[n] += o
            if stack:
                stack[-1][2] -= dur
            stack.append([ts + dur, name, dur])
            calls[name] += 1
        for end, n, o in stack:
            own[n] += o
    total = sum(own.values())
    print(f"{total / 1000 / steps:.1f} ms of operators per step ({path})")
    print(f"| operator | ms per step | share | calls per step |")
    print("|---|---|---|---|")
    for name, us in own.most_common(top):
        print(f"| {name} | {us / 1000 / steps:.2f} | {100 * us / total:.1f}% | {calls[name] / steps:.0f} |")


if __name__ == "__main__":
    main()
