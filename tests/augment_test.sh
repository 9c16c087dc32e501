#!/usr/bin/env bash
# --augment end to end: a run on MNIST's IDX files and one on a folder of RGB
# JPEGs train with it; nothing of it enters model.json (real TF.js loads the
# model, tests/node/tfjs_check.js); history.json and the checkpoint record
# its canonical text; --resume refuses another augmentation or none; bad
# specs are one clear line.
# Usage: augment_test.sh MNIST_TRAIN DATA_DIR NODE_DIR OUT_DIR
set -u
train=$1 data=$2 node_dir=$3 out=$4
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib.sh"
fail=0
rm -rf "$out" && mkdir -p "$out"
spec="rotation=0.05,zoom=0.1,translation=0.05,contrast=0.2,brightness=0.1"
canon="rotation=0.05,zoom=0.1,translation=0.05,contrast=0:0.2,brightness=0.1,fill_mode=reflect,fill_value=0,interpolation=bilinear"

# 1. MNIST with augmentation, a checkpoint, then TF.js loads the model.
"$train" --epochs 1 --train-limit 6000 --test-limit 1000 --seed 4 --data-dir "$data" \
  --augment "$spec" --augment-threads 2 --checkpoint-dir "$out/ck" \
  --model-save-path "$out/m" > "$out/run.txt" 2>&1
check "train with --augment: exit" 0 $?
check "the log names the augmentation and both sides' threads" 1 \
  "$(has_match "$out/run.txt" "augmentation: $canon. on 2 CPU threads beside the step's [0-9]+")"
check "history.json records the canonical text" "$canon" \
  "$(/usr/bin/python3 -c "import json; print(json.load(open('$out/m/history.json'))['settings']['augment'])")"
check "nothing of it in model.json" 0 "$(grep -ciE 'augment|random|rotation' "$out/m/model.json")"
node "$node_dir/tfjs_check.js" --model "$out/m" --images "$data/t10k-images-idx3-ubyte" \
  --labels "$data/t10k-labels-idx1-ubyte" --count 200 --params 594922 --min-accuracy 0.8 \
  > "$out/tfjs.txt" 2>&1
check "real TF.js loads and predicts with it" 0 $?
tail -2 "$out/tfjs.txt"

# 2. --resume keeps the augmentation: another one, or none, is refused.
run_resume() { "$train" --epochs 2 --train-limit 6000 --test-limit 1000 --data-dir "$data" \
  --checkpoint-dir "$out/ck" --resume "$@" > "$out/resume.txt" 2>&1; echo $?; }
check "resume with another augmentation: exit 2" 2 "$(run_resume --augment "rotation=0.1")"
check "  says which" 1 "$(has_text "$out/resume.txt" "was made with augment = \"$canon\", this run has \"rotation=0.1,fill_mode=reflect")"
check "resume without augmentation: exit 2" 2 "$(run_resume)"
check "  says which" 1 "$(has_text "$out/resume.txt" "was made with augment = \"$canon\", this run has \"\"")"
check "resume with the same one in other words: exit 0" 0 \
  "$(run_resume --augment "translation=-0.05,rotation=0.05,zoom=0.1,contrast=0:0.2,brightness=-0.1")"

# 3. A folder of 32x32 RGB JPEGs, the geometric layers' other settings.
/usr/bin/python3 "$root/scripts/make_image_folders.py" --data-dir "$data" --workers 2 \
  --layout flat --format jpeg --color rgb --size 32 --limit-train 400 "$out/rgb" > /dev/null ||
  { echo "FAIL: make_image_folders"; exit 1; }
"$train" --epochs 1 --seed 2 --batch-size 64 --data-dir "$out/rgb" --cache-dir "$out/cache" \
  --augment "flip=horizontal_and_vertical,rotation=-0.1:0.2,zoom=0.2,zoom_width=-0.1:0.1,fill_mode=constant,fill_value=0.5,interpolation=nearest" \
  --model-save-path "$out/rgb_model" > "$out/rgb.txt" 2>&1
check "train a folder with --augment: exit" 0 $?
check "  on its RGB images" 1 "$(has_match "$out/rgb.txt" "images: [0-9]+x[0-9]+ rgb")"

# 4. Bad specs: exit 2, one line naming the bad part and what is allowed.
for case in "shear=0.1|augmentation \"shear=0.1\": unknown key \"shear\"; keys: flip, rotation" \
            "rotation=1.5|augmentation \"rotation=1.5\": out of range: expected a number in \[-1, 1\]" \
            "zoom=0.1:-1.5|augmentation \"zoom=0.1:-1.5\": out of range: expected numbers in \[-1, 1\]" \
            "flip=diagonal|augmentation \"flip=diagonal\": flip must be horizontal, vertical or horizontal_and_vertical" \
            "fill_mode=mirror,rotation=0.1|fill_mode must be reflect, wrap, constant or nearest"; do
  bad=${case%%|*} regex=${case#*|}
  bash "$root/tests/expect_error.sh" 2 "$regex" "$train" --epochs 1 --train-limit 100 \
    --data-dir "$data" --augment "$bad" > "$out/bad.txt" 2>&1
  check "--augment '$bad' refused" 1 "$(has_text "$out/bad.txt" PASS)"
  grep -v '^exit code' "$out/bad.txt" | head -1
done

[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
