#!/usr/bin/env bash
# One writer per folder: two real mnist-train processes saving into the same
# --model-save-path, RACES times. Each outcome must be one complete model of
# one of the two runs: weights.bin equal to that run's (each seed's weights
# are known from a run alone, --threads 1), model.json naming only
# weights.bin, and history.json of the same run; likewise a training racing a
# `convert` into one folder (RACES / 3 times). A second training with a
# --checkpoint-dir in use is refused (exit 4) until the first one is gone,
# however it ended (SIGKILL here).
# Usage: two_writers.sh MNIST_TRAIN WORK_DIR [RACES] [NODE_DIR]
set -u
train=$1 work=$2 races=${3:-12} node_dir=${4:-}
node=${NODE:-node}
rm -rf "$work" && mkdir -p "$work"
fail=0
. "$(dirname "$0")/lib.sh"
args=(--epochs 1 --train-limit 64 --validation-split 0 --test-limit 10 --threads 1)
sum() { md5sum < "$1" | cut -c1-32; }
seed_of_history() { grep -oE '"seed": *[0-9]+' "$1" | head -n 1 | grep -oE '[0-9]+$'; }

declare -A weights_of=()  # seed -> md5 of its weights.bin
for s in 11 12; do
  "$train" "${args[@]}" --seed "$s" --model-save-path "$work/alone-$s" >/dev/null 2>&1 ||
    { echo "FAIL: the run of seed $s alone"; exit 1; }
  weights_of[$s]=$(sum "$work/alone-$s/weights.bin")
done
[ "${weights_of[11]}" != "${weights_of[12]}" ] || { echo "FAIL: two seeds, one model"; exit 1; }

bad=0 waited=0 wins_11=0 wins_12=0
for r in $(seq 1 "$races"); do
  "$train" "${args[@]}" --seed 11 --model-save-path "$work/shared" >/dev/null 2>"$work/a.err" &
  a=$!
  "$train" "${args[@]}" --seed 12 --model-save-path "$work/shared" >/dev/null 2>"$work/b.err" &
  b=$!
  wait "$a"; ra=$?
  wait "$b"; rb=$?
  grep -qh "waiting for another mnist-train" "$work/a.err" "$work/b.err" && waited=$((waited + 1))
  w=$(sum "$work/shared/weights.bin")
  h=$(seed_of_history "$work/shared/history.json")
  paths=$(tr -d ' \n' < "$work/shared/model.json" | grep -oE '"paths":\[[^]]*\]')
  leftovers=$(cd "$work/shared" && ls -A | grep -vxE 'model.json|weights.bin|history.json|\.mnist-train\.lock' | tr '\n' ' ')
  if [ "$ra" != 0 ] || [ "$rb" != 0 ] || [ "$w" != "${weights_of[$h]:-none}" ] ||
     [ "$paths" != '"paths":["weights.bin"]' ] || [ -n "$leftovers" ]; then
    echo "race $r: exits $ra/$rb, weights $w, history of seed $h, $paths, leftovers: $leftovers"
    bad=$((bad + 1))
  fi
  [ "$h" = 11 ] && wins_11=$((wins_11 + 1))
  [ "$h" = 12 ] && wins_12=$((wins_12 + 1))
done
echo "races: $races; mixed or broken outcomes: $bad; last saver seed 11: $wins_11, seed 12: $wins_12; a writer waited for the other in $waited"
check "every race left one complete model of one run" 0 "$bad"
"$train" evaluate --model "$work/shared" --test-limit 10 >/dev/null 2>&1
check "the last outcome loads" 0 "$?"
if [ -n "$node_dir" ] && [ -d "$node_dir/node_modules/@tensorflow/tfjs" ]; then
  timeout 120 "$node" "$node_dir/load_check.js" "$work/shared" >/dev/null 2>&1
  check "real TF.js loads it" 0 "$?"
fi

# A training and a convert into one folder: each outcome is one complete model,
# the training's (float32) or the conversion's (uint8), model.json naming it.
"$train" convert --model "$work/alone-12" --out "$work/conv-alone" --quantize uint8 >/dev/null 2>&1 ||
  { echo "FAIL: convert alone"; exit 1; }
converted=$(sum "$work/conv-alone/weights.bin")
bad=0 conv_last=0
for r in $(seq 1 $(( (races + 2) / 3 ))); do
  "$train" "${args[@]}" --seed 11 --model-save-path "$work/mixed" >/dev/null 2>"$work/t.err" &
  t=$!
  # convert starts up as fast as training does but has less to do: started
  # 0.3 to 1.2 s later, its save falls before, during or after the training's.
  (sleep "$(( (r % 4 + 1) * 3 / 10 )).$(( (r % 4 + 1) * 3 % 10 ))"
   exec "$train" convert --model "$work/alone-12" --out "$work/mixed" --quantize uint8) \
    >/dev/null 2>"$work/c.err" &
  c=$!
  wait "$t"; rt=$?
  wait "$c"; rc=$?
  w=$(sum "$work/mixed/weights.bin")
  quantized=$(grep -c '"quantization"' "$work/mixed/model.json")
  if [ "$rt" != 0 ] || [ "$rc" != 0 ] || ! { [ "$w" = "${weights_of[11]}" ] && [ "$quantized" = 0 ]; } &&
     ! { [ "$w" = "$converted" ] && [ "$quantized" = 1 ]; }; then
    echo "training/convert race $r: exits $rt/$rc, weights $w, quantized manifest: $quantized"
    bad=$((bad + 1))
  fi
  [ "$quantized" = 1 ] && conv_last=$((conv_last + 1))
  "$train" evaluate --model "$work/mixed" --test-limit 10 >/dev/null 2>&1 || bad=$((bad + 1))
done
echo "training/convert races: $(( (races + 2) / 3 )); convert saved last in $conv_last"
check "every training/convert race left one complete model" 0 "$bad"

# A checkpoint folder belongs to one training at a time.
"$train" --epochs 1000000 --train-limit 1 --validation-split 0 --test-limit 10 --threads 1 \
  --checkpoint-dir "$work/ckpt" >/dev/null 2>"$work/holder.err" &
holder=$!
for _ in $(seq 1 300); do
  grep -q "Epoch 1/" "$work/holder.err" && break
  sleep 0.1
done
"$train" "${args[@]}" --checkpoint-dir "$work/ckpt" >/dev/null 2>"$work/second.err" </dev/null
check "a second training with that --checkpoint-dir: exit 4" 4 "$?"
check "... saying who holds it" 1 \
  "$(grep -cE "ckpt: in use by another mnist-train \(pid $holder\) as its checkpoint folder" "$work/second.err")"
kill -KILL "$holder"; wait "$holder" 2>/dev/null
"$train" "${args[@]}" --checkpoint-dir "$work/ckpt" >/dev/null 2>&1
check "once the holder is gone (SIGKILL), it trains" 0 "$?"
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
