#!/usr/bin/env python3
"""Counts the instructions `hawker serve` spends on a workload, with valgrind's callgrind.

Instruction counts repeat exactly from run to run, so they show changes far smaller than the
herd's noisy rates can. The server runs `--demo` under callgrind; the counters are zeroed just
before the workload and dumped just after it, so start-up and seeding are not counted.

    python3 bench/callgrind/count.py target/release/hawker buys 400
        400 buyers from 40 connections try a flash sale of 200 units (200 paid, 200 sold out)
    python3 bench/callgrind/count.py target/release/hawker reservations 400
        the same buys with `Prefer: respond-async` (answered at the reservation; the charges
        that follow are counted too if they finish before the dump)
    python3 bench/callgrind/count.py target/release/hawker socket-buys 400
        the same buys as `buy` messages on each buyer's live socket (opened before counting),
        answered at the reservation; counts the room's messages to those sockets too
    python3 bench/callgrind/count.py target/release/hawker connections 400
        400 connections, each sending one request (an API 404)

Prints the instructions counted and the dump's path (read it with `callgrind_annotate
--inclusive=yes FILE`). Needs valgrind (callgrind_control comes with it) and python3.
"""

import http.client
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

CONNECTIONS = 40


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port, method, path, body=None, token=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
    )
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def in_parallel(worker, items, answers):
    """Runs `worker` on CONNECTIONS threads, each given its share of `(index, item)`."""
    parts = [[(i, item) for i, item in enumerate(items) if i % CONNECTIONS == w]
             for w in range(CONNECTIONS)]
    threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def open_sale(port, n):
    """A flash sale of n/2 units on the demo show, n buyers' tokens, the show and the sale."""
    _, login = api(port, "POST", "/auth/login",
                   {"email": "lumi@demo.hawker.dev", "password": "hawker-demo"})
    seller = login["token"]
    _, shows = api(port, "GET", "/shows?status=live")
    show = shows["shows"][0]
    _, product = api(port, "GET", f"/products/{show['product_ids'][0]}", token=seller)
    for variant in product["variants"]:
        status, sale = api(port, "POST", f"/shows/{show['id']}/flash-sales",
                           {"variant_id": variant["id"], "quantity": n // 2, "price_cents": 100,
                            "per_buyer_limit": 1, "duration_s": 600}, token=seller)
        if status < 300:
            break
    else:
        sys.exit(f"could not open a flash sale: {sale}")
    sale_id = sale.get("sale", sale)["id"]
    tokens = []
    for i in range(n):
        _, user = api(port, "POST", "/auth/signup",
                      {"email": f"buyer{i}@count.dev", "password": "password123",
                       "display_name": f"Buyer {i}", "role": "buyer"})
        tokens.append(user["token"])
    return tokens, show, sale_id


def prepare_buys(port, n, prefer=None):
    tokens, show, sale_id = open_sale(port, n)
    body = json.dumps({"show_id": show["id"], "flash_sale_id": sale_id, "quantity": 1,
                       "payment_method": "pm_card_visa"})

    def run():
        answers = []

        def worker(part):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            for i, token in part:
                headers = {"Authorization": "Bearer " + token,
                           "Idempotency-Key": f"count-{i}",
                           "Content-Type": "application/json"}
                if prefer:
                    headers["Prefer"] = prefer
                conn.request("POST", "/api/v1/orders", body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                answers.append(r.status)

        return in_parallel(worker, tokens, answers)

    return run


class LiveSocket:
    """A minimal WebSocket client: the upgrade, masked text frames out, frames in."""

    def __init__(self, port, path, token):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=600)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n")
                          .encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            sys.exit(f"upgrade refused: {head[:80]!r}")

    def send(self, text):
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            self.buf += self.sock.recv(65536)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def next_text(self):
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            payload = self._read(n)
            if b0 & 0x0F == 1:
                return payload


def prepare_socket_buys(port, n):
    tokens, show, sale_id = open_sale(port, n)
    sockets = [LiveSocket(port, f"/api/v1/shows/{show['id']}/live", t) for t in tokens]
    for s in sockets:
        s.next_text()  # the snapshot

    def run():
        answers = []

        def worker(part):
            for i, s in part:
                key = f"count-{i}"
                s.send(json.dumps({"type": "buy", "key": key, "flash_sale_id": sale_id,
                                   "quantity": 1, "payment_method": "pm_card_visa"}))
                tag = f'"type":"order","key":"{key}"'.encode()
                while tag not in (msg := s.next_text()):
                    pass
                answers.append(json.loads(msg)["status"])

        return in_parallel(worker, sockets, answers)

    return run


def prepare_connections(port, n):
    def run():
        answers = []
        for _ in range(n):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request("GET", "/api/v1/nope", headers={"Connection": "close"})
            r = conn.getresponse()
            r.read()
            answers.append(r.status)
            conn.close()
        return answers

    return run


def main():
    workloads = {"buys": prepare_buys,
                 "reservations": lambda port, n: prepare_buys(port, n, "respond-async"),
                 "socket-buys": prepare_socket_buys,
                 "connections": prepare_connections}
    if len(sys.argv) != 4 or sys.argv[2] not in workloads:
        sys.exit(__doc__)
    binary, workload, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = tempfile.mkdtemp(prefix="hawker-callgrind-")
    out = os.path.join(data, "callgrind.out")
    port = free_port()
    env = dict(os.environ, HAWKER_DATA_DIR=data, HAWKER_LISTEN=f"127.0.0.1:{port}",
               HAWKER_MEDIA_PORT="0", HAWKER_ARGON2_MEMORY_KIB="64",
               HAWKER_ARGON2_ITERATIONS="1")
    server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                               binary, "serve", "--demo"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Ready once the API answers (the port is bound before start-up has finished).
        for _ in range(600):
            try:
                if api(port, "GET", "/shows")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        run = workloads[workload](port, n)
        subprocess.run(["callgrind_control", "--zero", str(server.pid)], check=True,
                       capture_output=True)
        answers = run()
        subprocess.run(["callgrind_control", "--dump", str(server.pid)], check=True,
                       capture_output=True)
    finally:
        server.send_signal(2)
        server.wait()
    dump = out + ".1"
    with open(dump) as f:
        totals = next(line for line in f if line.startswith(("summary:", "totals:")))
    instructions = int(totals.split()[1])
    statuses = {s: answers.count(s) for s in sorted(set(answers))}
    print(f"{workload} {n}: {instructions:,} instructions "
          f"({instructions // max(n, 1):,} per {workload[:-1]}), answers {statuses}")
    print(f"dump: {dump}")


if __name__ == "__main__":
    main()
