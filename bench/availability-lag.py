#!/usr/bin/env python3
"""Event lag as a reader of the catalog sees it: from a loan's commit (the 201 of POST /api/loans)
to the moment GET /api/books/{id} shows the new availableCopies (the catalog applied the lending
service's book.availability-changed event and bumped its cache version); then the same for the
return. Polls through the gateway, back to back on one keep-alive connection, so a figure is
accurate to one GET's round trip.

    availability-lag.py URL TOKEN READER_ID TITLES_FILE SAMPLES MAX_SECONDS

Each sample borrows a title of TITLES_FILE for READER_ID (a librarian's TOKEN), waits for the
catalog to show one copy fewer, returns it and waits for the count to come back: two figures per
sample. Stops after SAMPLES samples or MAX_SECONDS. Prints JSON: n, p50_ms, p90_ms, p99_ms, max_ms.
Standard library only.
"""
import http.client
import json
import sys
import time
from urllib.parse import urlsplit

url, token, reader, titles_file, samples, max_seconds = sys.argv[1:7]
titles = [t.strip() for t in open(titles_file) if t.strip()]
u = urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def call(method, path, body=None, headers=None):
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


def available(book):
    status, b = call("GET", f"/api/books/{book}")
    assert status == 200, status
    return b["availableCopies"]


def wait_for(book, want, deadline=30.0):
    t0 = time.perf_counter()
    while available(book) != want:
        if time.perf_counter() - t0 > deadline:
            return None
    return (time.perf_counter() - t0) * 1000


lags, missed = [], 0
end = time.monotonic() + float(max_seconds)
i = 0
while i < int(samples) and time.monotonic() < end:
    book = titles[i % len(titles)]
    i += 1
    before = available(book)
    status, loan = call("POST", "/api/loans", {"bookId": book, "userId": reader, "days": 14}, auth)
    if status != 201:
        print(f"borrow answered {status}: {loan}", file=sys.stderr)
        missed += 1
        continue
    lag = wait_for(book, before - 1)
    lags.append(lag) if lag is not None else None
    missed += lag is None
    status, _ = call("POST", f"/api/loans/{loan['id']}/return", None, auth)
    lag = wait_for(book, before) if status == 200 else None
    lags.append(lag) if lag is not None else None
    missed += lag is None

lags.sort()
pick = lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))], 1) if lags else None
print(json.dumps({"n": len(lags), "missed": missed, "p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99),
                  "max_ms": round(lags[-1], 1) if lags else None}))
