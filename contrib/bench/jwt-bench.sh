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

echo "== jwt-bench ($secs s per measurement, one thread; uncached and raw interleaved)"
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
echo "== ratio: token validations / raw verifies"
echo "   speed%: uncached / openssl speed verify/s (separate processes, run one after the other)"
echo "   raw%:   uncached / jwt-bench raw/s (same process, interleaved slices: robust to load)"
echo "   cached: cached / uncached of the same algorithm; rs256x: cached / uncached RS256"
awk -v rsa="$rsa" -v ec="$ec" -v ed="$ed" '
NR > 1 {
    raw = ($1 == "RS256" || $1 == "PS256") ? rsa : ($1 == "ES256" ? ec : ed)
    if ($1 == "RS256")
        rs = $2
    if (raw > 0)
        printf "%-6s speed verify/s %8.0f   speed%% %5.1f%%   raw%% %5.1f%%   cached %6.1fx   rs256x %6.1fx\n",
               $1, raw, 100 * $2 / raw, ($4 > 0 ? 100 * $2 / $4 : 0), $3 / $2, (rs > 0 ? $3 / rs : 0)
}' "$tmp/bench"
