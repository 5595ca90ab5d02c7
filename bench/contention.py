#!/usr/bin/env python3
"""Fires one POST /api/loans per reader at once and reports how the race ended.

    contention.py URL TOKEN BOOK_ID READERS_FILE

Opens one connection per reader first, then writes every request in the same instant (a
librarian lending the one title to each reader), and reads the answers. Prints one JSON object:
{"statuses": {"201": 5, "409": 495}, "drain_ms": ..., "p50_ms": ..., "p99_ms": ..., "connect_ms": ...}
drain_ms runs from the first request written to the last answer read. Standard library only.
"""
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def main():
    url, token, book, readers_file = sys.argv[1:5]
    readers = [line.strip() for line in open(readers_file) if line.strip()]
    host, port = urlsplit(url).hostname, urlsplit(url).port or 80

    t = time.perf_counter()
    conns = await asyncio.gather(*(asyncio.open_connection(host, port) for _ in readers))
    connect_ms = (time.perf_counter() - t) * 1000

    def request(reader):
        body = json.dumps({"bookId": book, "userId": reader, "days": 14}).encode()
        head = (f"POST /api/loans HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        return head.encode() + body

    payloads = [request(r) for r in readers]

    async def one(conn, payload, start):
        reader, writer = conn
        writer.write(payload)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()  # Connection: close -> the answer ends at EOF
        done = time.perf_counter()
        writer.close()
        return int(status_line.split()[1]) if status_line else 0, (done - start) * 1000

    start = time.perf_counter()
    results = await asyncio.gather(*(one(c, p, start) for c, p in zip(conns, payloads)))
    statuses = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    lat = sorted(ms for _, ms in results)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(json.dumps({"statuses": statuses, "drain_ms": round(max(lat), 1), "p50_ms": round(pick(0.5), 1),
                      "p99_ms": round(pick(0.99), 1), "connect_ms": round(connect_ms, 1), "requests": len(lat)}))


asyncio.run(main())
