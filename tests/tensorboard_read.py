#!/usr/bin/python3
"""Reads mnist-train's TensorBoard event files without any of its C++ code.

The TFRecord framing is checked here (each record's length and data against
their masked CRC-32C, computed by this file's own bitwise CRC-32C), and the
Event protos are parsed by Python classes that protoc generates from
proto/tensorboard/*.proto into a temporary folder. Then, as TensorBoard would
show them, the scalars of each run (train/, validation/) per tag: files in
name order, records in file order.

  tensorboard_read.py PROTOC PROTO_DIR dump LOGDIR
      prints every run, tag and its (step, value) pairs
  tensorboard_read.py PROTOC PROTO_DIR check LOGDIR HISTORY_JSON CSV BATCHES [batch]
      the Keras tags and steps of a finished run of BATCHES batches per
      epoch, its epoch values equal (as float32) to history.json's and the
      CSV log's, no step twice; "batch": batch_* after every batch too
  tensorboard_read.py PROTOC PROTO_DIR same LOGDIR_A LOGDIR_B
      the two logs hold the same tags, steps and values
Prints "ok ..." lines, and "FAIL ..." lines with exit status 1.
"""
import csv
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile

failures = []


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else ": " + detail))
    if not ok:
        failures.append(what)


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def load_event_class(protoc, proto_dir):
    out = tempfile.mkdtemp(prefix="tb-proto-")
    protos = sorted(glob.glob(os.path.join(proto_dir, "tensorboard", "*.proto")))
    subprocess.run([protoc, "--python_out=" + out, "-I", proto_dir] + protos, check=True)
    # A package of its own, found before any installed "tensorboard".
    open(os.path.join(out, "tensorboard", "__init__.py"), "w").close()
    sys.path.insert(0, out)
    from tensorboard import event_pb2  # noqa: E402

    return event_pb2.Event


def records(path):
    """The records of one file, every CRC checked; a torn tail is reported."""
    data = open(path, "rb").read()
    at = 0
    out = []
    while at < len(data):
        if len(data) - at < 12:
            check(path + ": ends inside a record header", False, "%d bytes left" % (len(data) - at))
            break
        (length,) = struct.unpack_from("<Q", data, at)
        (length_crc,) = struct.unpack_from("<I", data, at + 8)
        if length_crc != masked(crc32c(data[at:at + 8])):
            check(path + ": length CRC at byte %d" % at, False, "mismatch")
            break
        if at + 12 + length + 4 > len(data):
            check(path + ": ends inside a record", False, "at byte %d" % at)
            break
        payload = data[at + 12:at + 12 + length]
        (data_crc,) = struct.unpack_from("<I", data, at + 12 + length)
        if data_crc != masked(crc32c(payload)):
            check(path + ": data CRC at byte %d" % at, False, "mismatch")
            break
        out.append(payload)
        at += 12 + length + 4
    return out


def read_logdir(event_class, logdir):
    """{run: {tag: [(step, value), ...]}} in TensorBoard's reading order,
    and how many files each run has."""
    runs = {}
    files = {}
    for run in ("train", "validation"):
        paths = sorted(glob.glob(os.path.join(logdir, run, "events.out.tfevents.*")))
        if not paths:
            continue
        files[run] = len(paths)
        tags = runs.setdefault(run, {})
        for path in paths:
            events = []
            for payload in records(path):
                event = event_class()
                event.ParseFromString(payload)
                events.append(event)
            first = events[0] if events else None
            check(os.path.relpath(path, logdir) + " starts with file_version brain.Event:2",
                  first is not None and first.WhichOneof("what") == "file_version" and
                  first.file_version == "brain.Event:2", str(first))
            for event in events[1:]:
                for value in event.summary.value:
                    if value.WhichOneof("value") != "simple_value":
                        check("%s: %s is a simple_value" % (path, value.tag), False,
                              str(value))
                        continue
                    tags.setdefault(value.tag, []).append((event.step, value.simple_value))
    return runs, files


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def check_run(runs, history_path, csv_path, batches, with_batches):
    epochs = json.load(open(history_path))["epochs"]
    rows = list(csv.DictReader(open(csv_path)))
    n = len(epochs)
    check("history.json and the CSV log have the same epochs", len(rows) == n,
          "%d rows, %d epochs" % (len(rows), n))
    train = runs.get("train", {})
    validation = runs.get("validation", {})
    expected_train = {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}
    if with_batches:
        expected_train |= {"batch_loss", "batch_accuracy"}
    check("train tags " + " ".join(sorted(expected_train)), set(train) == expected_train,
          str(sorted(train)))
    expected_validation = {"epoch_loss", "epoch_accuracy", "evaluation_loss_vs_iterations",
                           "evaluation_accuracy_vs_iterations"}
    check("validation tags " + " ".join(sorted(expected_validation)),
          set(validation) == expected_validation, str(sorted(validation)))
    for run, tags in runs.items():
        for tag, points in tags.items():
            steps = [s for s, _ in points]
            check("%s/%s: no step twice, in order" % (run, tag), steps == sorted(set(steps)),
                  str(steps))
    epoch_steps = list(range(n))
    for run, tag, key, csv_key in (("train", "epoch_loss", "loss", "loss"),
                                   ("train", "epoch_accuracy", "acc", "acc"),
                                   ("train", "epoch_learning_rate", "lr", "lr"),
                                   ("validation", "epoch_loss", "val_loss", "val_loss"),
                                   ("validation", "epoch_accuracy", "val_acc", "val_acc")):
        points = runs.get(run, {}).get(tag, [])
        check("%s/%s at steps %s (0-based epochs)" % (run, tag, epoch_steps),
              [s for s, _ in points] == epoch_steps, str(points))
        values = [v for _, v in points]
        check("%s/%s = history.json's %s as float32" % (run, tag, key),
              values == [f32(e[key]) for e in epochs], "%s vs %s" % (values, [e[key] for e in epochs]))
        check("%s/%s = the CSV log's %s as float32" % (run, tag, csv_key),
              values == [f32(float(r[csv_key])) for r in rows], str(values))
    for tag in ("evaluation_loss_vs_iterations", "evaluation_accuracy_vs_iterations"):
        steps = [s for s, _ in validation.get(tag, [])]
        check("validation/%s at the optimizer's steps after each epoch" % tag,
              steps == [batches * (e + 1) for e in range(n)], str(steps))
    if with_batches:
        for tag in ("batch_loss", "batch_accuracy"):
            steps = [s for s, _ in train.get(tag, [])]
            check("train/%s at global batches 1..%d" % (tag, n * batches),
                  steps == list(range(1, n * batches + 1)), str(steps))
        # The last batch's running means are the epoch's figures.
        last = dict(train.get("batch_loss", []))
        check("batch_loss at each epoch's last batch = its epoch_loss",
              [last.get(batches * (e + 1)) for e in range(n)] ==
              [v for _, v in train.get("epoch_loss", [])], str(last))


def main():
    protoc, proto_dir, mode = sys.argv[1:4]
    event_class = load_event_class(protoc, proto_dir)
    if mode == "dump":
        runs, files = read_logdir(event_class, sys.argv[4])
        for run, tags in runs.items():
            print("%s (%d events file%s)" % (run, files[run], "" if files[run] == 1 else "s"))
            for tag, points in sorted(tags.items()):
                shown = ", ".join("%d: %.6g" % p for p in points[:4])
                more = " ... (%d in all, last step %d)" % (len(points), points[-1][0]) \
                    if len(points) > 4 else ""
                print("  %-36s %s%s" % (tag, shown, more))
    elif mode == "check":
        logdir, history, csv_path, batches = sys.argv[4:8]
        runs, _ = read_logdir(event_class, logdir)
        check_run(runs, history, csv_path, int(batches), sys.argv[8:9] == ["batch"])
    elif mode == "same":
        a, _ = read_logdir(event_class, sys.argv[4])
        b, _ = read_logdir(event_class, sys.argv[5])
        check("same runs and tags", {r: sorted(t) for r, t in a.items()} ==
              {r: sorted(t) for r, t in b.items()}, "%s vs %s" % (a.keys(), b.keys()))
        for run in a:
            for tag in a[run]:
                check("%s/%s: same steps and values" % (run, tag),
                      a[run][tag] == b.get(run, {}).get(tag), "%s vs %s" %
                      (a[run][tag][:5], b.get(run, {}).get(tag, [])[:5]))
    else:
        sys.exit("tensorboard_read.py: unknown mode " + mode)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
