#!/usr/bin/env python3
"""Mixed loopback load on `mnist-train serve` until STOP_FILE exists, for
tests/serve_soak.sh: page fetchers (the page, TF.js, the sample, model.json
and the weights it names, history.json), hostile requests over raw sockets
(malformed lines and headers, bodies, traversal, absurd lengths) and slow
clients that send a byte every few seconds. Prints one JSON line: requests
by kind and status, 5xx count, transport errors, bytes received.

Usage: soak_load.py BASE_URL STOP_FILE
"""
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

BASE, STOP = sys.argv[1], sys.argv[2]
HOST, PORT = BASE.split("//")[1].rstrip("/").split(":")
PORT = int(PORT)
lock = threading.Lock()
report = {"requests": {}, "5xx": 0, "errors": {}, "bytes": 0}


def count(kind, status, nbytes=0):
    with lock:
        key = f"{kind} {status}"
        report["requests"][key] = report["requests"].get(key, 0) + 1
        report["bytes"] += nbytes
        if isinstance(status, int) and status >= 500:
            report["5xx"] += 1


def error(kind, e):
    with lock:
        key = f"{kind}: {type(e).__name__}"
        report["errors"][key] = report["errors"].get(key, 0) + 1


def get(path, kind):
    try:
        with urllib.request.urlopen(BASE + path.lstrip("/"), timeout=30) as r:
            body = r.read()
            count(kind, r.status, len(body))
            return body
    except urllib.error.HTTPError as e:
        count(kind, e.code)
    except Exception as e:  # noqa: BLE001 - counted, not raised
        error(kind, e)
    return None


def pages():
    paths = ["/", "/index.html", "/app.js", "/style.css", "/vendor/tf.min.js",
             "/vendor/tfjs-vis.umd.min.js", "/sample/images.bin", "/sample/labels.bin",
             "/models/history.json", "/nope", "/models/../../etc/passwd"]
    while not os.path.exists(STOP):
        get(random.choice(paths), "page")


def model():
    while not os.path.exists(STOP):
        body = get("/models/model.json", "model.json")
        if body is None:
            continue
        try:
            manifest = json.loads(body)["weightsManifest"]
        except Exception as e:  # noqa: BLE001
            error("model.json parse", e)
            continue
        for group in manifest:
            for p in group["paths"]:
                get("/models/" + p, "weights")


HOSTILE = [
    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
    b"GET /" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /models/model.json HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /models/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /models/v/deadbeef-1/weights.bin HTTP/1.1\r\nHost: x\r\n\r\n",
    b"BREW / HTCPCP/1.0\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200),
    b"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=" + b"0-1," * 500 + b"0-1\r\n\r\n",
    b"GET /models/model.json HTTP/1.1\r\n\r\n",
]


def hostile():
    while not os.path.exists(STOP):
        request = random.choice(HOSTILE)
        try:
            with socket.create_connection((HOST, PORT), timeout=15) as s:
                s.sendall(request)
                s.shutdown(socket.SHUT_WR)
                data = s.recv(64)
            status = int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else "closed"
            count("hostile", status)
        except (ConnectionError, socket.timeout) as e:
            count("hostile", type(e).__name__)
        except Exception as e:  # noqa: BLE001
            error("hostile", e)


def slow():
    while not os.path.exists(STOP):
        try:
            with socket.create_connection((HOST, PORT), timeout=30) as s:
                for b in b"GET / HTTP/1.1\r\nHost: x\r\n":
                    if os.path.exists(STOP):
                        break
                    s.sendall(bytes([b]))
                    time.sleep(2)
            count("slow", "sent")
        except (ConnectionError, socket.timeout) as e:
            count("slow", type(e).__name__)  # the server's 10 s bound closed it
        except Exception as e:  # noqa: BLE001
            error("slow", e)


threads = ([threading.Thread(target=pages) for _ in range(3)] +
           [threading.Thread(target=model) for _ in range(2)] +
           [threading.Thread(target=hostile) for _ in range(2)] +
           [threading.Thread(target=slow) for _ in range(8)])
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(report, sort_keys=True))
