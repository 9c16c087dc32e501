#!/usr/bin/env bash
# A short loopback load test of `mnist-train serve` with ab (apache2-utils):
# bounded in count (-n), concurrency (-c) and time (-s, timeout); passes when
# every request succeeded. Prints ab's figures.
# Usage: serve_load.sh MNIST_TRAIN MODEL_DIR
set -u
bin=$1 model=$2
out=$(mktemp)
"$bin" serve --model "$model" --port 0 --host 127.0.0.1 >"$out" 2>/dev/null &
pid=$!
trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
url=
for _ in $(seq 100); do
  url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' "$out") && break
  sleep 0.1
done
[ -n "$url" ] || { echo "FAIL: the server printed no URL"; exit 1; }
fail=0
run() {  # run N C PATH
  echo "=== ab -n $1 -c $2 -s 5 ${url}${3#/}"
  local report
  report=$(timeout 60 ab -q -n "$1" -c "$2" -s 5 "${url}${3#/}" 2>&1)
  echo "$report" | grep -E '^(Document Length|Complete requests|Failed requests|Non-2xx|Requests per second|Time per request|Transfer rate|Time taken)|^ +(50|95|99|100)%'
  echo "$report" | grep -q "^Complete requests: *$1\$" || { echo "FAIL: not all $1 requests completed"; fail=1; }
  echo "$report" | grep -q "^Failed requests: *0\$" || { echo "FAIL: failed requests"; fail=1; }
  if echo "$report" | grep -q "^Non-2xx"; then echo "FAIL: non-2xx responses"; fail=1; fi
}
run 2000 8 /models/model.json
run 2000 8 /
run 200 4 /models/weights.bin
kill -0 "$pid" 2>/dev/null || { echo "FAIL: the server died"; fail=1; }
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
