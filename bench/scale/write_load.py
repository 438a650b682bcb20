#!/usr/bin/env python3
"""Chained refresh-token rotations (a write each) from several threads, recording every
request's latency and status until a stop file appears; prints one JSON summary per phase.

Usage: write_load.py BASE_URL TOKENS_FILE STOP_FILE MARK_FILE [THREADS]
  TOKENS_FILE  refresh tokens of the public client `web`, one per line (one chain per thread)
  STOP_FILE    the load ends when this file exists
  MARK_FILE    requests started before this file exists count as phase "during", the ones
               after it as phase "after" (bench/scale/housekeeping.sh creates it when the
               purge has finished)
A chain whose token stops working (invalid_grant) logs in again with EMAIL/PASSWORD from the
environment, and the failure is counted.
"""
import json
import os
import sys
import threading
import time

import requests

base, tokens_file, stop_file, mark_file = sys.argv[1:5]
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 8
tokens = [t.strip() for t in open(tokens_file) if t.strip()]
email = os.environ.get("EMAIL", "")
password = os.environ.get("PASSWORD", "")
records = {"during": [], "after": []}
lock = threading.Lock()


def chain(token):
    http = requests.Session()
    while not os.path.exists(stop_file):
        phase = "after" if os.path.exists(mark_file) else "during"
        started = time.monotonic()
        try:
            r = http.post(
                base + "/oauth2/token",
                data={"grant_type": "refresh_token", "refresh_token": token, "client_id": "web"},
                timeout=30,
            )
            status = r.status_code
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        except requests.RequestException:
            status, body = 0, {}
        elapsed = (time.monotonic() - started) * 1000.0
        with lock:
            records[phase].append((elapsed, status, body.get("error", "")))
        if status == 200:
            token = body["refresh_token"]
        elif status == 503:
            time.sleep(float(r.headers.get("retry-after", "1")))
        elif email:
            # The chain is broken (a 500 may have rotated the token and lost the answer).
            login = http.post(
                base + "/oauth2/token",
                data={"grant_type": "password", "username": email, "password": password,
                      "client_id": "web"},
                timeout=30,
            )
            if login.status_code == 200:
                token = login.json()["refresh_token"]
            else:
                time.sleep(0.5)


workers = [threading.Thread(target=chain, args=(tokens[i % len(tokens)],)) for i in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()


def summary(rows):
    if not rows:
        return {"requests": 0}
    lat = sorted(r[0] for r in rows)
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)
    statuses = {}
    for _, s, e in rows:
        key = str(s) + (" " + e if e else "")
        statuses[key] = statuses.get(key, 0) + 1
    return {
        "requests": len(rows),
        "ok": sum(1 for r in rows if r[1] == 200),
        "errors": sum(1 for r in rows if r[1] != 200),
        "statuses": statuses,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": round(lat[-1], 1),
        "over_100ms": sum(1 for x in lat if x > 100.0),
    }


print(json.dumps({phase: summary(rows) for phase, rows in records.items()}))
