#!/usr/bin/env python3
"""One line per history.json that mnist-train wrote: median training seconds
per epoch (validation excluded), the first epoch (cuDNN autotuning, capture),
the whole job and the test accuracy."""
import json
import statistics
import sys

for path in sys.argv[1:]:
    with open(path) as f:
        h = json.load(f)
    train = [e["train_seconds"] for e in h["epochs"]]
    whole = [e["seconds"] for e in h["epochs"]]
    rest = train[1:] or train
    print(f"{path}: median train {statistics.median(train):.3f} s/epoch "
          f"(first {train[0]:.2f}, later min {min(rest):.3f} max {max(rest):.3f}); "
          f"median with validation {statistics.median(whole):.3f} s; "
          f"job {h['total_seconds']:.1f} s; test acc {h['test']['acc']:.4f}")
