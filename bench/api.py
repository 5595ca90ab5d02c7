#!/usr/bin/env python3
"""Test data through the public API, for the bench/ scripts (standard library only).

    api.py titles URL TOKEN COUNT COPIES LABEL ISBN_START   -> prints COUNT new book IDs
    api.py readers URL COUNT TAG                             -> prints COUNT new reader IDs

Titles are created by a librarian's TOKEN with synthetic ISBN-13s under 979-8 (ISBN_START + i,
like bench/generate-catalog.py's); readers register themselves (e-mail readerN.TAG@bench.local),
4 at a time since each registration hashes a password. Any refusal stops with its answer.
"""
import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def post(url, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"POST {url} answered {e.code}: {e.read().decode(errors='replace')[:300]}")


def isbn(n):
    digits = "9798%08d" % (n % 100_000_000)
    s = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(digits))
    return digits + str((10 - s % 10) % 10)


def main():
    kind, url = sys.argv[1], sys.argv[2].rstrip("/")
    if kind == "titles":
        token, count, copies, label, start = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7])
        for i in range(1, count + 1):
            book = post(f"{url}/api/books", {"isbn": isbn(start + i), "title": f"{label} {i}", "publisher": "Bench",
                                             "totalCopies": copies}, token)
            print(book["id"], flush=True)
    elif kind == "readers":
        count, tag = int(sys.argv[3]), sys.argv[4]

        def register(i):
            return post(f"{url}/api/auth/register", {"email": f"reader{i}.{tag}@bench.local", "firstName": "Bench",
                                                     "lastName": f"Reader {i}", "password": f"bench-password-{i}"})["id"]

        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(register, range(1, count + 1)))
        print("\n".join(ids))
    else:
        sys.exit(__doc__)


main()
