#!/usr/bin/env bash
# Hostile and huge images given to `predict`: a decompression bomb (a valid
# 20000x20000 PNG of 390 KB) is refused from its header, fast and in little
# memory; a 4096x4096 image (the largest allowed) is read within a memory
# bound; truncated files and other formats get a one-line reason (exit 3).
# Prints each case's wall time and peak RSS (the figures in docs/formats.md).
# Usage: image_limits.sh MNIST_TRAIN MNIST_FIXTURE MNIST_MEASURE MODEL_DIR WORK_DIR [RSS_SCALE]
#   RSS_SCALE multiplies the memory bounds (sanitizer builds: 20).
set -u
train=$1 fixture=$2 measure=$3 model=$4 work=$5 scale=${6:-1}
mkdir -p "$work"
fail=0
# case NAME RSS_LIMIT_MB CODE REGEX ARGS...: predict ARGS must exit CODE with
# stderr matching REGEX (one line when CODE is not 0), within RSS_LIMIT_MB.
case_() {
  local name=$1 limit=$(($2 * scale)) code=$3 regex=$4
  shift 4
  local err=$work/$name.err
  local line
  line=$("$measure" "$limit" "$train" predict --model "$model" "$@" 2>"$err" </dev/null | grep '^measure:')
  local rc
  rc=$(sed -E 's/^measure: exit ([0-9]+),.*/\1/' <<<"$line")
  local rss
  rss=$(sed -E 's/.*peak RSS ([0-9]+) MB.*/\1/' <<<"$line")
  echo "$name: ${line#measure: }"
  [ -n "$line" ] || { echo "FAIL: $name: no measurement"; fail=1; return; }
  if [ "$rc" != "$code" ]; then echo "FAIL: $name: exit $rc, expected $code"; cat "$err"; fail=1; fi
  if [ "$rss" -gt "$limit" ]; then echo "FAIL: $name: peak RSS $rss MB above $limit MB"; fail=1; fi
  if [ -n "$regex" ] && ! grep -Eq -- "$regex" "$err"; then echo "FAIL: $name: stderr does not match $regex:"; cat "$err"; fail=1; fi
  if [ "$code" != 0 ] && [ "$(grep -c . "$err")" -ne 1 ]; then
    echo "FAIL: $name: expected one line on stderr:"; cat "$err"; fail=1
  fi
  if grep -Eq 'terminate called|Exception raised from|frame #|core dumped|Segmentation|Aborted|\(\)' "$err"; then
    echo "FAIL: $name: crash, stack trace or empty reason on stderr"; fail=1
  fi
}

"$fixture" png-bomb "$work/bomb.png" 20000 || exit 1
"$fixture" png-digit "$work/digit4096.png" 4096 || exit 1
echo "bomb.png: $(stat -c %s "$work/bomb.png") bytes, claims 20000x20000 (400 MB of 8-bit pixels)"
echo "digit4096.png: $(stat -c %s "$work/digit4096.png") bytes"
head -c 300 "$work/digit4096.png" > "$work/truncated.png"
printf '\377\330\377\340\000\020JFIF\000' > "$work/photo.jpg"

case_ bomb 200 3 "bomb.png: the image is 20000x20000 pixels, more than this tool decodes" "$work/bomb.png"
case_ largest_allowed 300 0 "" --invert "$work/digit4096.png"
case_ truncated 200 3 "truncated.png: the PNG file is truncated" "$work/truncated.png"
case_ jpeg 200 3 "photo.jpg: (not a valid JPEG file|the JPEG file is truncated or damaged) \([^)]+\)" "$work/photo.jpg"
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
