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
    python3 bench/callgrind/count.py target/release/hawker connections 400
        400 connections, each sending one request (an API 404)

Prints the instructions counted and the dump's path (read it with `callgrind_annotate
--inclusive=yes FILE`). Needs valgrind (callgrind_control comes with it) and python3.
"""

import http.client
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


def prepare_buys(port, n, prefer=None):
    """A flash sale of n/2 units on the demo show, and n buyers' tokens."""
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

        parts = [[(i, t) for i, t in enumerate(tokens) if i % CONNECTIONS == w]
                 for w in range(CONNECTIONS)]
        threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return answers

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
