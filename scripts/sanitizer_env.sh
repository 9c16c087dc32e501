# Sourced by scripts/sanitize.sh and scripts/fuzz.sh: sanitizer settings
# that make every report fatal and readable.
_san_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Leaks inside libtorch/OpenMP/OpenBLAS's own start-up are not ours.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$_san_root/tests/lsan.supp:print_suppressions=0}
# ASan keeps freed memory in quarantine: RSS bounds of tests/serve_hostile.sh
# would measure that, not leaks.
export SERVE_HOSTILE_RSS_MB=${SERVE_HOSTILE_RSS_MB:-1024}
unset _san_root
