#!/bin/sh
# jwt-bench.sh -- token validations per second (jwt-bench) beside OpenSSL's raw
# verify rate (openssl speed) from the same run, with their ratio.
# Usage: contrib/bench/jwt-bench.sh [BUILD_DIR] [SECONDS]   (default: build, 3)
set -eu
build=${1:-build}
secs=${2:-3}
bench="$build/contrib/bench/jwt-bench"
[ -x "$bench" ] || { echo "jwt-bench.sh: $bench not built (run make)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "== jwt-bench ($secs s per measurement, one thread)"
"$bench" "$secs" | tee "$tmp/bench"
echo
echo "== openssl speed -seconds $secs rsa2048 ecdsap256 ed25519"
openssl speed -seconds "$secs" rsa2048 ecdsap256 ed25519 2>/dev/null > "$tmp/speed"
grep -E '^(rsa 2048|[[:space:]]*256 bits ecdsa|[[:space:]]*253 bits EdDSA)' "$tmp/speed" || cat "$tmp/speed"

# verify/s is the last column of the rsa and ecdsa lines, and the last column
# of the EdDSA line as well (OpenSSL 3.0 layout: sign verify sign/s verify/s).
rsa=$(awk '/^rsa 2048 bits/ {print $NF}' "$tmp/speed")
ec=$(awk '/256 bits ecdsa \(nistp256\)/ {print $NF}' "$tmp/speed")
ed=$(awk '/253 bits EdDSA \(Ed25519\)/ {print $NF}' "$tmp/speed")
echo
echo "== ratio: token validations / raw verifies (uncached; cached)"
awk -v rsa="$rsa" -v ec="$ec" -v ed="$ed" '
NR > 1 {
    raw = ($1 == "RS256" || $1 == "PS256") ? rsa : ($1 == "ES256" ? ec : ed)
    if (raw > 0)
        printf "%-6s raw verify/s %10.0f   uncached %5.1f%%   cached %8.1fx\n", $1, raw, 100 * $2 / raw, $3 / raw
}' "$tmp/bench"
