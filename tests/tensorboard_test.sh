#!/usr/bin/env bash
# --tensorboard-dir, decoded apart from our C++ (tests/tensorboard_read.py:
# its own CRC-32C, protoc's Python classes of proto/tensorboard/):
#  1. a 2-epoch run with --tensorboard-update-freq batch: Keras's tags and
#     steps, epoch values equal to history.json's and the CSV log's;
#  2. the same run with checkpoints, killed (SIGKILL) after its first epoch:
#     what it flushed reads back; --resume then ends with the same tags,
#     steps and values as run 1 (one thread, same seed), no step twice;
#  3. a run killed after it flushed epochs its checkpoint does not hold (run
#     1's whole log, resumed from run 2's first checkpoint): the resumed run
#     drops those events and ends with run 1's curves again.
# Usage: tensorboard_test.sh MNIST_TRAIN DATA_DIR OUT_DIR PROTOC PROTO_DIR
set -u
train=$1 data=$2 out=$3 protoc=$4 proto=$5
. "$(dirname "$0")/lib.sh"
fail=0
read_tb() { /usr/bin/python3 "$(dirname "$0")/tensorboard_read.py" "$protoc" "$proto" "$@"; }
rm -rf "$out" && mkdir -p "$out"
# 1280 images: 1088 train (9 batches of 128), 192 validate.
args=(--threads 1 --epochs 2 --train-limit 1280 --test-limit 200 --seed 11 --data-dir "$data"
      --tensorboard-update-freq batch)
batches=9

"$train" "${args[@]}" --tensorboard-dir "$out/tb" --csv-log "$out/straight.csv" \
  --model-save-path "$out/model" > "$out/straight.txt" 2>&1 || {
  cat "$out/straight.txt"; echo "FAIL: the run with --tensorboard-dir"; exit 1; }
grep "TensorBoard:" "$out/straight.txt"
read_tb dump "$out/tb"
read_tb check "$out/tb" "$out/model/history.json" "$out/straight.csv" "$batches" batch || fail=1

# Killed after its first epoch's checkpoint (the epoch's events are flushed
# before it), while the second trains.
"$train" "${args[@]}" --tensorboard-dir "$out/tb_killed" --checkpoint-dir "$out/ck" \
  --csv-log "$out/resumed.csv" --model-save-path "$out/resumed" > "$out/killed.txt" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  compgen -G "$out/ck/ckpt-*" > /dev/null && break
  sleep 0.05
done
kill -KILL "$pid"
wait "$pid" 2> /dev/null
echo "killed after: $(ls "$out/ck" | grep ckpt-)"
cp -a "$out/ck" "$out/ck_behind"
read_tb dump "$out/tb_killed" | tee "$out/killed_dump.txt"
check "the killed run's flushed epoch 0 (train/epoch_loss)" 1 \
  "$(has_match "$out/killed_dump.txt" '^  epoch_loss +0: ')"
check "its batches 1-$batches (train/batch_loss)" 1 \
  "$(has_match "$out/killed_dump.txt" "^  batch_loss .*\\(($batches|$((2 * batches))) in all")"

"$train" "${args[@]}" --tensorboard-dir "$out/tb_killed" --checkpoint-dir "$out/ck" --resume \
  --csv-log "$out/resumed.csv" --model-save-path "$out/resumed" > "$out/resumed.txt" 2>&1 || {
  cat "$out/resumed.txt"; echo "FAIL: the resumed run"; exit 1; }
grep "resuming at\|TensorBoard:" "$out/resumed.txt"
read_tb dump "$out/tb_killed"
read_tb check "$out/tb_killed" "$out/resumed/history.json" "$out/resumed.csv" "$batches" batch \
  || fail=1
read_tb same "$out/tb" "$out/tb_killed" || fail=1

cp -a "$out/tb" "$out/tb_ahead"
"$train" "${args[@]}" --tensorboard-dir "$out/tb_ahead" --checkpoint-dir "$out/ck_behind" --resume \
  > "$out/ahead.txt" 2>&1 || { cat "$out/ahead.txt"; echo "FAIL: the run resumed behind its log"; exit 1; }
grep "resuming at\|TensorBoard:" "$out/ahead.txt"
# Epoch 1's three train and two validation epoch_* values, batches 10-18 (two
# tags each), evaluation_* at step 18 (two).
check "events after the checkpoint dropped" 1 \
  "$(has_text "$out/ahead.txt" "; 25 events after the checkpoint dropped")"
read_tb same "$out/tb" "$out/tb_ahead" || fail=1
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
