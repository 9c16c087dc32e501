# Shared by the shell tests (sourced: . "$(dirname "$0")/lib.sh"). Each test
# sets fail=0 first, calls check for every expectation and ends with
#   [ "$fail" -eq 0 ] && echo PASS; exit "$fail"
# (CTest passes a test on "PASS" and fails it on "FAIL").

# check WHAT EXPECTED ACTUAL: prints "ok   WHAT: ACTUAL", or "FAIL WHAT:
# expected ..., got ..." and sets fail=1.
check() {
  if [ "$2" = "$3" ]; then
    echo "ok   $1: $3"
  else
    echo "FAIL $1: expected '$2', got '$3'"
    fail=1
  fi
}

# has_text FILE TEXT / has_match FILE REGEX: 1 when a line of FILE holds the
# fixed string TEXT / matches the extended regex REGEX, else 0.
has_text() { if grep -qF -- "$2" "$1"; then echo 1; else echo 0; fi; }
has_match() { if grep -qE -- "$2" "$1"; then echo 1; else echo 0; fi; }

# wait_for_url FILE: the http://127.0.0.1:PORT/ a server (mnist-train serve
# --port 0) printed into FILE, waited for up to 10 s; "" if none came.
wait_for_url() {
  local u
  for _ in $(seq 100); do
    u=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' "$1" 2>/dev/null) && { echo "$u"; return; }
    sleep 0.1
  done
}
