#!/usr/bin/env bash
# `mnist-train serve` over real HTTP (curl): every route and its content type,
# HEAD, unknown paths, traversal attempts (../, %2e%2e, absolute paths, a
# symlink out of the model folder), methods, size bounds, CORS, and a clean
# stop on Ctrl-C. Servers use --port 0 and are always stopped.
# Usage: serve_http.sh MNIST_TRAIN MODEL_DIR
set -u
bin=$1 model=$2
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
. "$(dirname "$0")/lib.sh"

# A model folder whose history.json is a symlink out of it, plus a secret
# beside it that no request may reach.
mkdir -p "$work/models"
cp "$model/model.json" "$model/weights.bin" "$work/models/"
echo "secret" > "$work/secret.txt"
ln -s "$work/secret.txt" "$work/models/history.json"
ln -s "$work/secret.txt" "$work/models/link.bin"

start() {  # start NAME ARGS...: runs the server, sets $url
  local name=$1; shift
  "$bin" serve --port 0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  eval "${name}_pid=$!"
  for _ in $(seq 100); do
    url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' "$work/$name.out" 2>/dev/null) && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "FAIL: $name printed no URL"; cat "$work/$name.err"; exit 1; }
  echo "$name: $(cat "$work/$name.out")"
}
get() {  # get PATH [curl args]: "status content-type bytes"
  local p=$1; shift
  curl -s --path-as-is -o /dev/null -w '%{http_code} %{content_type} %{size_download}' "$@" "${url%/}$p"
}

start plain --model "$model"
base=$url
echo "--- routes and content types"
check "/" "200 text/html; charset=utf-8 $(stat -c %s "$(dirname "$0")/../web/index.html")" "$(get /)"
check "/index.html" "200 text/html; charset=utf-8" "$(get /index.html | cut -d' ' -f1-3)"
check "/app.js" "200 text/javascript; charset=utf-8" "$(get /app.js | cut -d' ' -f1-3)"
check "/style.css" "200 text/css; charset=utf-8" "$(get /style.css | cut -d' ' -f1-3)"
check "/vendor/tf.min.js" "200 text/javascript; charset=utf-8" "$(get /vendor/tf.min.js | cut -d' ' -f1-3)"
check "/vendor/tfjs-vis.umd.min.js" "200 text/javascript; charset=utf-8" "$(get /vendor/tfjs-vis.umd.min.js | cut -d' ' -f1-3)"
check "/models/model.json" "200 application/json" "$(get /models/model.json | cut -d' ' -f1-2)"
# model.json as on disk, its weight paths naming the version served (serve's
# ModelVersions): v/<id>/weights.bin, answered from that version's files.
served_path() {  # the served manifest's first path
  curl -s "${url}models/model.json" | python3 -c "import json,sys; print(json.load(sys.stdin)['weightsManifest'][0]['paths'][0])"
}
check "served model.json = the file but its weight paths" "True" "$(curl -s "${url}models/model.json" | python3 -c "
import json, re, sys
served, disk = json.load(sys.stdin), json.load(open('$model/model.json'))
paths = [p for g in served['weightsManifest'] for p in g['paths']]
for g in served['weightsManifest']: g['paths'] = [re.sub(r'^v/[0-9a-f]+-[0-9]+/', '', p) for p in g['paths']]
print(served == disk and all(re.match(r'^v/[0-9a-f]{8}-[0-9]+/weights.bin$', p) for p in paths))")"
vpath=$(served_path)
check "/models/$vpath" "200 application/octet-stream 2379688" "$(get "/models/$vpath")"
check "/models/$vpath = weights.bin" "$(md5sum <"$model/weights.bin")" "$(curl -s "${url}models/$vpath" | md5sum)"
check "same version while unchanged" "$vpath" "$(served_path)"
for p in /models/v/00000000-1/weights.bin "/models/${vpath%weights.bin}model.json" \
         "/models/${vpath%weights.bin}../weights.bin" "/models/${vpath%/weights.bin}" /models/v/ /models/v; do
  check "$p" "404" "$(get "$p" | cut -d' ' -f1)"
done
check "/models/weights.bin" "200 application/octet-stream 2379688" "$(get /models/weights.bin)"
check "/models/history.json" "200 application/json $(stat -c %s "$model/history.json")" "$(get /models/history.json)"
check "/models/metadata.json of a plain MNIST model (none)" "404" "$(get /models/metadata.json | cut -d' ' -f1)"
check "/sample/images.bin" "200 application/octet-stream 156800" "$(get /sample/images.bin)"
check "/sample/labels.bin" "200 application/octet-stream 200" "$(get /sample/labels.bin)"
check "sample = first 200 t10k labels" "$(tail -c +9 "$MNIST_DATA_DIR/t10k-labels-idx1-ubyte" | head -c 200 | md5sum)" \
  "$(curl -s "${url}sample/labels.bin" | md5sum)"
check "/sample/info.json: MNIST's 28x28x1 and the labels.bin labels" "200 28 28 1 mnist True" "$(curl -s -w ' %{http_code}' "${url}sample/info.json" | python3 -c "
import sys, json
text, code = sys.stdin.read().rsplit(' ', 1)
d = json.loads(text)
print(code, d['height'], d['width'], d['channels'], d['source'],
      d['count'] == 200 and bytes(d['labels']) == open('$MNIST_DATA_DIR/t10k-labels-idx1-ubyte', 'rb').read()[8:208])")"
check "query string ignored" "200" "$(get '/models/model.json?v=1' | cut -d' ' -f1)"

echo "--- HEAD"
head=$(curl -s -I "${url}models/weights.bin" | tr -d '\r')
check "HEAD status" "HTTP/1.1 200 OK" "$(echo "$head" | head -1)"
check "HEAD Content-Length" "Content-Length: 2379688" "$(echo "$head" | grep -i '^Content-Length')"
check "HEAD body" "0" "$(curl -s -I -o /dev/null -w '%{size_download}' "${url}models/weights.bin")"
check "no CORS without --cors" "" "$(echo "$head" | grep -i '^Access-Control')"

echo "--- unknown paths, traversal, absolute paths, symlinks: all 404"
for p in /nope /models/ /models /models/probs.bin /models/preds.json /web/index.html \
         /package.json /node_modules/@tensorflow/tfjs/package.json /vendor/ /sample/ \
         /../../../etc/passwd /models/../../../../etc/passwd /models/..%2f..%2fetc%2fpasswd \
         /%2e%2e/%2e%2e/etc/passwd /models/%2e%2e/%2e%2e/etc/passwd /models/%252e%252e/x \
         /models/..%5c..%5cetc%5cpasswd //etc/passwd /%2fetc%2fpasswd "$work/secret.txt" \
         /models//etc/passwd /models/link.bin /models/model.json%00 /models/model.json%zz; do
  check "$p" "404" "$(get "$p" | cut -d' ' -f1)"
done
mv "$work/models/history.json" "$work/h.link"
printf '{"labels":["a","b"]}' > "$work/models/metadata.json"
start linked --model "$work/models"
check "Teachable Machine's metadata.json" "200 application/json 20" "$(get /models/metadata.json)"
check "history.json -> symlink out of DIR" "404" "$(get /models/history.json | cut -d' ' -f1)"
check "model.json beside it" "200" "$(get /models/model.json | cut -d' ' -f1)"
mv "$work/h.link" "$work/models/history.json"
check "symlink swapped in while serving" "404" "$(get /models/history.json | cut -d' ' -f1)"
echo "--- a manifest naming ./weights.bin (TF.js's browser saver), as loading reads it"
mkdir -p "$work/dotslash"
sed 's|"paths":\["weights.bin"\]|"paths":["./weights.bin"]|' "$model/model.json" > "$work/dotslash/model.json"
cp "$model/weights.bin" "$work/dotslash/"
check "manifest rewritten" "1" "$(grep -c '"./weights.bin"' "$work/dotslash/model.json")"
start dotslash --model "$work/dotslash"
check "/models/weights.bin" "200 application/octet-stream 2379688" "$(get /models/weights.bin)"
check "served as v/<id>/weights.bin" "1" "$(served_path | grep -cE '^v/[0-9a-f]{8}-1/weights.bin$')"
check "/models/$(served_path)" "200 application/octet-stream 2379688" "$(get "/models/$(served_path)")"
check "evaluates" "0" "$("$bin" evaluate --model "$work/dotslash" --test-limit 50 >/dev/null 2>&1; echo $?)"
url=$base
check "absolute-form target" "404" "$(curl -s -o /dev/null -w '%{http_code}' --request-target "http://127.0.0.1/etc/passwd" "$url")"

echo "--- methods and bounds"
check "POST" "405" "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "${url}models/model.json")"
check "DELETE" "405" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "${url}models/model.json")"
check "body over 4 KiB" "413" "$(head -c 100000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @- "${url}x")"
long=$(head -c 20000 /dev/zero | tr '\0' a)
check "20 KB URI" "414" "$(curl -s -o /dev/null -w '%{http_code}' "${url}$long")"
check "20 KB header" "400" "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $long" "${url}")"
check "still serving" "200" "$(get /models/model.json | cut -d' ' -f1)"

echo "--- CORS"
start cors --model "$model" --cors https://example.org
h=$(curl -s -D - -o /dev/null -H 'Origin: https://example.org' "${url}models/model.json" | tr -d '\r')
check "Allow-Origin" "Access-Control-Allow-Origin: https://example.org" "$(echo "$h" | grep -i '^Access-Control-Allow-Origin')"
check "Allow-Credentials" "Access-Control-Allow-Credentials: true" "$(echo "$h" | grep -i '^Access-Control-Allow-Credentials')"
pre=$(curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: https://example.org' \
  -H 'Access-Control-Request-Method: GET' -H 'Access-Control-Request-Headers: authorization' \
  "${url}models/model.json" | tr -d '\r')
check "preflight status" "HTTP/1.1 204 No Content" "$(echo "$pre" | head -1)"
check "preflight headers" "Access-Control-Allow-Headers: authorization" "$(echo "$pre" | grep -i '^Access-Control-Allow-Headers')"

echo "--- Ctrl-C"
# shellcheck disable=SC2154
kill -INT "$plain_pid"
wait "$plain_pid"
check "exit code after Ctrl-C" "0" "$?"
check "log" "[info] Ctrl-C: stopping" "$(grep -o '\[info\] Ctrl-C: stopping' "$work/plain.err")"

[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
