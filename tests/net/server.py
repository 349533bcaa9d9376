#!/usr/bin/env python3
"""server.py -- loopback HTTP(S) test server for test_http_client (started and stopped by run-http-client.sh).

Usage: server.py DIR. DIR holds ip.pem/ip.key (SAN IP:127.0.0.1, DNS:localhost)
and other.pem/other.key (SAN DNS:other.example). Listens on 127.0.0.1 only:
  tls       HTTPS with the ip certificate
  tls_other HTTPS with the other.example certificate (host-name mismatch)
  plain     HTTP
  silent    a listening socket that never accepts (connects hang)
  closed    a port that was bound then closed (connection refused)
and writes their ports to DIR/ports.json once everything listens.
Responses are written byte by byte as the tests need them (framing, bad
heads, dirty TLS closes), which is why this is not http.server.
"""
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
import time

DIR = sys.argv[1]
PORTS = {}


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
        if len(data) > 65536:
            return None
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers.append((name, value.strip()))
    length = 0
    for name, value in headers:
        if name.lower() == "content-length":
            length = int(value)
    while len(rest) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        rest += chunk
    return method, target, headers, rest[:length]


def response(status, body=b"", headers=(), length=True):
    reason = {200: "OK", 204: "No Content", 301: "Moved", 302: "Found", 303: "See Other",
              307: "Temporary Redirect", 308: "Permanent Redirect", 404: "Not Found",
              500: "Internal Server Error"}.get(status, "X")
    out = "HTTP/1.1 %d %s\r\n" % (status, reason)
    for name, value in headers:
        out += "%s: %s\r\n" % (name, value)
    if length:
        out += "Content-Length: %d\r\n" % len(body)
    out += "Connection: close\r\n\r\n"
    return out.encode("latin-1") + body


def chunked(parts):
    out = b""
    for p in parts:
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n\r\n"


JSON = [("Content-Type", "application/json")]


def metadata(base, issuer, jwks=None, introspection=True):
    doc = {"issuer": issuer, "jwks_uri": jwks or (base + "/jwks"),
           "response_types_supported": ["code"]}
    if introspection:
        doc["introspection_endpoint"] = base + "/introspect"
    return json.dumps(doc).encode()


def route(kind, method, target, headers, body):
    """Returns (bytes to send, how to close: 'clean', 'dirty' or 'hang')."""
    scheme = "http" if kind == "plain" else "https"
    port = PORTS[kind]
    base = "%s://127.0.0.1:%d" % (scheme, port)
    wk_oauth = "/.well-known/oauth-authorization-server"
    wk_oidc = "/.well-known/openid-configuration"
    if target == "/json-cl":
        return response(200, b'{"framing":"length"}', JSON + [("Cache-Control", "max-age=300"),
                                                               ("Cache-Control", "public")]), "clean"
    if target == "/json-chunked":
        head = response(200, b"", JSON + [("Transfer-Encoding", "chunked"),
                                          ("Cache-Control", "no-cache")], length=False)
        return head + chunked([b'{"framing":', b'"chunked"', b"}"]), "clean"
    if target == "/json-close":
        return response(200, b'{"framing":"close"}', JSON, length=False), "clean"
    if target == "/close-dirty":
        return response(200, b'{"framing":"close"}', JSON, length=False), "dirty"
    if target == "/big-cl":
        return response(200, b"x" * 300000, JSON), "clean"
    if target == "/big-chunked":
        head = response(200, b"", [("Transfer-Encoding", "chunked")], length=False)
        return head + chunked([b"y" * 30000] * 10), "clean"
    if target == "/big-close":
        return response(200, b"z" * 300000, length=False), "clean"
    if target == "/exact-limit":
        return response(200, b"e" * 1000), "clean"
    if target == "/truncated":
        return response(200, b"", [("Content-Length", "100")], length=False) + b"0123456789", "clean"
    if target == "/bad-head":
        return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "clean"
    if target == "/interim":
        return b"HTTP/1.1 100 Continue\r\n\r\n" + response(200, b"after-100"), "clean"
    if target == "/no-content":
        return response(204, b"", length=False), "clean"
    if target == "/expires":
        return response(200, b"{}", JSON + [("Expires", "Sun, 06 Nov 1994 08:49:37 GMT")]), "clean"
    if target == "/redirect-same":
        return response(302, b"moved", [("Location", "/json-cl")]), "clean"
    if target == "/redirect-abs":
        return response(307, b"", [("Location", base + "/json-chunked")]), "clean"
    if target == "/redirect-rel":
        return response(301, b"", [("Location", "json-cl")]), "clean"
    if target == "/redirect-post":
        return response(303, b"", [("Location", "/echo")]), "clean"
    if target == "/redirect-cross":
        return response(302, b"", [("Location", "%s://localhost:%d/json-cl" % (scheme, port))]), "clean"
    if target == "/redirect-http":
        return response(302, b"", [("Location", "http://127.0.0.1:%d/json-cl" % PORTS["plain"])]), "clean"
    if target == "/redirect-loop":
        return response(302, b"", [("Location", "/redirect-loop")]), "clean"
    if target == "/redirect-twice":
        return response(302, b"", [("Location", "/redirect-same")]), "clean"
    if target == "/hang":
        return b"", "hang"
    if target == "/echo" or target.startswith("/echo?"):
        doc = {"method": method, "target": target, "headers": headers,
               "body": body.decode("latin-1")}
        return response(200, json.dumps(doc).encode(), JSON), "clean"
    if target == "/status-500":
        return response(500, b"oops"), "clean"
    # Discovery. t1: RFC 8414 path-inserted; t2: OIDC appended only; t3: wrong
    # issuer (trailing slash); t5: 500 first (a valid appended one exists but
    # must not be reached); t6: OIDC inserted; t8: http jwks_uri; root: OIDC.
    if target == wk_oauth + "/t1":
        return response(200, metadata(base, base + "/t1"), JSON + [("Cache-Control", "max-age=600")]), "clean"
    if target == "/t2" + wk_oidc:
        return response(200, metadata(base, base + "/t2", introspection=False), JSON), "clean"
    if target == wk_oauth + "/t3":
        return response(200, metadata(base, base + "/t3/"), JSON), "clean"
    if target == wk_oauth + "/t5":
        return response(500, b"down"), "clean"
    if target == "/t5" + wk_oidc:
        return response(200, metadata(base, base + "/t5"), JSON), "clean"
    if target == wk_oidc + "/t6":
        return response(200, metadata(base, base + "/t6"), JSON), "clean"
    if target == wk_oauth + "/t8":
        return response(200, metadata(base, base + "/t8", jwks="http://127.0.0.1:1/jwks"), JSON), "clean"
    if target == wk_oidc:
        return response(200, metadata(base, base), JSON), "clean"
    return response(404, b"not found"), "clean"


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(20)
        if self.server.ssl_ctx is not None:
            try:
                conn = self.server.ssl_ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate: expected by some tests
        try:
            req = read_request(conn)
            if req is None:
                return
            data, close = route(self.server.kind, *req)
            if close == "hang":
                time.sleep(15)
                return
            conn.sendall(data)
            if isinstance(conn, ssl.SSLSocket):
                if close == "clean":
                    try:
                        conn = conn.unwrap()  # sends close_notify
                    except (ssl.SSLError, OSError):
                        pass
                else:
                    # Close the TCP socket under TLS: no close_notify.
                    raw = socket.socket(fileno=conn.detach())
                    raw.close()
                    return
        except (OSError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(kind, cert=None):
    srv = Server(("127.0.0.1", 0), Handler)
    srv.kind = kind
    srv.ssl_ctx = None
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(DIR, cert + ".pem"), os.path.join(DIR, cert + ".key"))
        srv.ssl_ctx = ctx
    PORTS[kind] = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()


def main():
    serve("tls", "ip")
    serve("tls_other", "other")
    serve("plain")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    PORTS["silent"] = silent.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    PORTS["closed"] = closed.getsockname()[1]
    closed.close()
    tmp = os.path.join(DIR, "ports.json.tmp")
    with open(tmp, "w") as f:
        json.dump(PORTS, f)
    os.rename(tmp, os.path.join(DIR, "ports.json"))
    # Bounded: the wrapper kills us long before this.
    time.sleep(600)


main()
