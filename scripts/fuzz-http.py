#!/usr/bin/env python3
"""Mutation fuzzing of an HTTP/1.1 server over real sockets.

Each case is a seed request mutated at random (bytes flipped, inserted, deleted, duplicated,
cut, CRLF and header tricks), sent on a fresh connection and followed by the client's FIN.
The server must then answer or close within --case-timeout seconds: it may never wait for
bytes after a FIN. Every --probe-every cases (and at the end) a plain GET on a new connection
must be answered 200, so no case leaves the server unresponsive. Deterministic for a --seed.

Usage: fuzz-http.py --port N [--cases 5000] [--seed 1] [--concurrency 8]
Exit status 1 and the offending case (hex) on the first failure.
"""

import argparse
import random
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

SEEDS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /x?y=z HTTP/1.1\r\nHost: a:8080\r\nAccept: */*\r\nCookie: a=b; c=d\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a/ HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
]

TOKENS = [b"\r\n", b"\n", b"\r", b" ", b":", b"\x00", b"\xff", b"chunked", b"Content-Length: 9\r\n",
          b"Transfer-Encoding: chunked\r\n", b"Host: b\r\n", b"0\r\n\r\n", b"ffffffffffffffff\r\n",
          b"HTTP/1.1", b"HTTP/9.9", b"\t", b"%00", b"Connection: keep-alive, close\r\n"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        position = rng.randint(0, len(data))
        if choice == 0 and data:  # flip a byte
            index = rng.randrange(len(data))
            data[index] = rng.randrange(256)
        elif choice == 1:  # insert a token
            data[position:position] = rng.choice(TOKENS)
        elif choice == 2 and data:  # delete a run
            del data[position:position + rng.randint(1, 8)]
        elif choice == 3 and data:  # duplicate a run
            start = rng.randrange(len(data))
            data[position:position] = data[start:start + rng.randint(1, 32)]
        elif choice == 4:  # cut
            data = data[:position]
        elif choice == 5:  # insert random bytes
            data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
        else:  # append another seed (pipelining)
            data += rng.choice(SEEDS)
    return bytes(data)


def run_case(port: int, payload: bytes, timeout: float) -> str | None:
    """None when the server answered or closed in time; else what went wrong."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.settimeout(timeout)
        try:
            connection.sendall(payload)
            connection.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return None  # the server closed first: a defined answer to bad input
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "neither answered nor closed after the FIN"
            connection.settimeout(remaining)
            try:
                chunk = connection.recv(65536)
            except socket.timeout:
                return "neither answered nor closed after the FIN"
            except ConnectionResetError:
                return None
            if not chunk:
                return None


def probe(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            connection.sendall(b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
            response = b""
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                response += chunk
            return response.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--case-timeout", type=float, default=10.0)
    parser.add_argument("--probe-every", type=int, default=250)
    arguments = parser.parse_args()

    rng = random.Random(arguments.seed)
    cases = [mutate(rng, rng.choice(SEEDS)) for _ in range(arguments.cases)]
    started = time.monotonic()
    done = 0
    with ThreadPoolExecutor(max_workers=arguments.concurrency) as pool:
        for batch_start in range(0, len(cases), arguments.probe_every):
            batch = cases[batch_start:batch_start + arguments.probe_every]
            results = pool.map(lambda payload: run_case(arguments.port, payload, arguments.case_timeout), batch)
            for payload, failure in zip(batch, results):
                done += 1
                if failure:
                    print(f"FAIL case {done}: {failure}: {payload.hex()}")
                    return 1
            if not probe(arguments.port, arguments.case_timeout):
                print(f"FAIL: the server stopped answering after case {done}")
                return 1
    print(f"fuzz-http: {done} cases (seed {arguments.seed}), every one answered or closed after its FIN, "
          f"server answering throughout; {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
