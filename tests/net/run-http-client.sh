#!/bin/sh
# run-http-client.sh -- make check: test_http_client against tests/net/server.py on loopback.
# Makes throwaway certificates, starts the server, waits for its ports, runs the
# test program, and stops the server by PID. Exit 77 (skip) without python3/openssl.
set -u
here=$(cd "$(dirname "$0")" && pwd)
prog=./tests/unit/test_http_client
pid=
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mg-net.XXXXXX") || exit 1

cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

command -v python3 >/dev/null 2>&1 || { echo "# SKIP: no python3"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "# SKIP: no openssl"; exit 77; }
[ -x "$prog" ] || { echo "not ok - $prog not built"; exit 1; }

mkcert() { # name subject san
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "$2" -addext "subjectAltName=$3" \
        -keyout "$tmp/$1.key" -out "$tmp/$1.pem" >/dev/null 2>&1
}
mkcert ip /CN=127.0.0.1 IP:127.0.0.1,DNS:localhost || { echo "not ok - openssl req"; exit 1; }
mkcert other /CN=other.example DNS:other.example || { echo "not ok - openssl req"; exit 1; }

python3 "$here/server.py" "$tmp" &
pid=$!
i=0
while [ ! -f "$tmp/ports.json" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "not ok - test server did not start"
        exit 1
    fi
    sleep 0.1
done

MG_TEST_DIR=$tmp "$prog"
