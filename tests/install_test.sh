#!/usr/bin/env bash
# An installed mnist-train works with no source or build tree around:
# `cmake --install` into a temporary prefix, the prefix moved elsewhere (the
# binary finds its page relative to itself), every MNIST_* variable removed
# from the environment, then a 1-epoch training and `serve` from that copy.
# Also `cpack -G DEB` builds a package whose control file declares the
# runtime dependencies.
# Usage: install_test.sh BUILD_DIR DATA_DIR
set -u
build=$(cd "$1" && pwd) data=$(cd "$2" && pwd)
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill -INT "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
. "$(dirname "$0")/lib.sh"

cmake --install "$build" --prefix "$work/staged/usr" > "$work/install.log" 2>&1 ||
  { cat "$work/install.log"; echo "FAIL: cmake --install"; exit 1; }
mv "$work/staged/usr" "$work/elsewhere"
prefix=$work/elsewhere
mkdir -p "$work/data" "$work/run"
cp "$data"/* "$work/data/"
cd "$work/run" || exit 1
# No MNIST_* variable, and PATH without the build tree (an array, not a
# function: a background function would be a subshell that Ctrl-C misses).
mapfile -t unset_mnist < <(env | grep -o '^MNIST_[A-Z_]*' | sed 's/^/--unset=/')
run=(env "${unset_mnist[@]}" PATH="$prefix/bin:/usr/bin:/bin")

"${run[@]}" mnist-train --epochs 1 --train-limit 2000 --test-limit 500 --seed 1 -q \
  --data-dir "$work/data" --model-save-path "$work/model" > train.out 2> train.err
check "installed training exit code" "0" "$?"
grep -q "Evaluation result:" train.out && echo "ok   $(tr '\n' ' ' < train.out)" ||
  { echo "FAIL: no Evaluation result"; cat train.err; fail=1; }

"${run[@]}" mnist-train --log-level debug serve --model "$work/model" --port 0 --data-dir "$work/data" \
  > serve.out 2> serve.err &
server=$!
url=
for _ in $(seq 100); do
  url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' serve.out 2>/dev/null) && break
  sleep 0.1
done
[ -n "$url" ] || { echo "FAIL: serve printed no URL"; cat serve.err; exit 1; }
web_dir=$(grep -o '"web_dir":"[^"]*"' serve.err | head -1)
check "page served from the installed copy" "\"web_dir\":\"$prefix/share/mnist-train/web\"" "$web_dir"
for p in / /app.js /vendor/tf.min.js /vendor/tfjs-vis.umd.min.js /models/model.json \
         /models/weights.bin /sample/labels.bin; do
  check "GET $p" "200" "$(curl -s -o /dev/null -w '%{http_code}' "${url%/}$p")"
done
check "index.html is the installed one" "$(md5sum < "$prefix/share/mnist-train/web/index.html")" \
  "$(curl -s "$url" | md5sum)"
kill -INT "$server"
wait "$server"
check "serve exit code after Ctrl-C" "0" "$?"
server=

if command -v dpkg-deb > /dev/null && command -v dpkg-shlibdeps > /dev/null; then
  (cd "$build" && cpack -G DEB -B "$work/deb" > "$work/cpack.log" 2>&1) ||
    { cat "$work/cpack.log"; echo "FAIL: cpack -G DEB"; exit 1; }
  deb=$(ls "$work"/deb/mnist-train_*.deb)
  echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes"
  depends=$(dpkg-deb -f "$deb" Depends)
  echo "Depends: $depends"
  for lib in libtorch libdnnl libopenblas0-pthread libspdlog libcpp-httplib libspng0; do
    case "$depends" in
      *"$lib"*) echo "ok   depends on $lib" ;;
      *) echo "FAIL: Depends lacks $lib"; fail=1 ;;
    esac
  done
  check "package holds the binary and the page" "2" \
    "$(dpkg-deb -c "$deb" | grep -cE './usr/bin/mnist-train$|./usr/share/mnist-train/web/node_modules/@tensorflow/tfjs/dist/tf.min.js$')"
else
  echo "FAIL: dpkg-deb or dpkg-shlibdeps missing (Debian's dpkg-dev; scripts/setup.sh --tests)"
  fail=1
fi
[ "$fail" -eq 0 ] && echo PASS
exit "$fail"
