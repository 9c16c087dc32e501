#!/usr/bin/env bash
# Class names as a folder of images gives them (any UTF-8, long ones): a
# trained MNIST model whose model.json names its ten classes so. evaluate's
# table and matrix align them by terminal columns and cut the longest with
# an ellipsis; --json and predict give them whole; a save (convert) writes
# them into Teachable Machine's metadata.json, and a save of a plain MNIST
# model into the same folder removes it.
# Usage: class_names_test.sh MNIST_TRAIN MODEL_DIR DATA_DIR OUT_DIR
set -u
. "$(dirname "$0")/lib.sh"
train=$1 model=$2 data=$3 out=$4
fail=0
rm -rf "$out" && mkdir -p "$out/named"
cp "$model/model.json" "$model/weights.bin" "$out/named/"
python3 - "$out/named/model.json" <<'EOF'
import json, sys
path = sys.argv[1]
doc = json.load(open(path, encoding="utf-8"))
doc["userDefinedMetadata"] = {"classNames": [
    "zéro", "一", "два", "three", "vier",
    "a folder name that goes on and on and on", "six \U0001F408", "sieben", "huit", "nine"]}
json.dump(doc, open(path, "w", encoding="utf-8"), ensure_ascii=False)
EOF

"$train" evaluate --model "$out/named" --data-dir "$data" --test-limit 300 > "$out/eval.txt"
check "evaluate: exit status" 0 "$?"
cat "$out/eval.txt"
# Display columns, computed independently: East Asian wide/fullwidth and the
# cat emoji take two, combining marks none.
check "evaluate: the table's and the matrix's numbers end in one column each" "ok" "$(python3 - "$out/eval.txt" <<'EOF'
import re, sys, unicodedata
def width(s):
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
table = [l for l in lines if re.search(r"\d\.\d{4}[ *] +\d\.\d{4}[ *] +\d\.\d{4}[ *] +\d+$", l)]
matrix = [l for l in lines if re.search(r"^  \d .*?( +\d+){10}$", l)]
# Numbers are right-aligned: where the first one ends.
starts = {width(re.match(r"^(.*?\d\.\d{4})", l).group(1)) for l in table}
ends = {width(re.match(r"^(.*?\D +\d+)( +\d+){9}$", l).group(1)) for l in matrix}
print("ok" if len(table) == 12 and len(starts) == 1 and len(matrix) == 10 and len(ends) == 1
      else "table %d rows %s, matrix %d rows %s" % (len(table), starts, len(matrix), ends))
EOF
)"
check "evaluate: the long name cut to 28 columns with an ellipsis" 2 \
  "$(grep -c '^  5 a folder name that goes o… ' "$out/eval.txt")"
check "evaluate: a wide name whole" 1 "$(has_match "$out/eval.txt" '^  1 一 +[01]\.[0-9]{4}')"
check "evaluate: an emoji name whole" 1 "$(has_text "$out/eval.txt" '  6 six 🐈 ')"
"$train" evaluate --json --model "$out/named" --data-dir "$data" --test-limit 300 > "$out/eval.json"
check "evaluate --json: names whole" "a folder name that goes on and on and on|six 🐈|zéro" \
  "$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1], encoding="utf-8")); print("|".join([m["per_class"][5]["name"], m["class_names"][6], m["per_class"][0]["name"]]))' "$out/eval.json")"
# Test image 0 is a 7.
"$train" predict --json --model "$out/named" --idx "$data/t10k-images-idx3-ubyte" --index 0 \
  > "$out/predict.json"
check "predict --json: the class name" "7 sieben" \
  "$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1], encoding="utf-8")); print(m[0]["predicted"], m[0]["class_name"])' "$out/predict.json")"
"$train" predict --model "$out/named" --idx "$data/t10k-images-idx3-ubyte" --index 0 > "$out/predict.txt"
check "predict: index and name" 1 "$(has_match "$out/predict.txt" '#0: 7 sieben \(probability 0\.[0-9]{4}\)$')"

"$train" convert --model "$out/named" --out "$out/saved" > "$out/convert.txt" 2>&1
check "convert (a save): exit status" 0 "$?"
check "metadata.json: the names, whole" "ok" "$(python3 - "$out/saved" <<'EOF'
import json, sys
d = sys.argv[1]
tm = json.load(open(d + "/metadata.json", encoding="utf-8"))
names = json.load(open(d + "/model.json", encoding="utf-8"))["userDefinedMetadata"]["classNames"]
print("ok" if tm["labels"] == names and names[6] == "six \U0001F408" and tm["imageSize"] == 28
      and tm["grayscale"] is True and tm["packageName"] == "mnist-train" else json.dumps(tm))
EOF
)"
"$train" convert --model "$model" --out "$out/saved" > "$out/convert2.txt" 2>&1
check "a plain MNIST model saved over it: exit status" 0 "$?"
check "  ... leaves no metadata.json" "absent" "$([ -e "$out/saved/metadata.json" ] && echo present || echo absent)"
check "  ... and its model.json names no classes" 0 "$(grep -c userDefinedMetadata "$out/saved/model.json")"
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
