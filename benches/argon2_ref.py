"""The C reference for benches/hashing.rs: libargon2 through argon2-cffi.

Reads commands from stdin, one per line, and answers each with the elapsed nanoseconds:
  verify N    N verifications, one after another
  verify2 N   N rounds of two verifications at once, on two threads (cffi releases the GIL)
Parameters match identa's defaults: argon2id, m = 19456 KiB, t = 2, p = 1, 32-byte hash.
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from argon2 import low_level

PASSWORD = b"correct horse battery staple"
ENCODED = low_level.hash_secret(
    PASSWORD, b"0123456789abcdef", time_cost=2, memory_cost=19456, parallelism=1,
    hash_len=32, type=low_level.Type.ID,
)


def verify():
    assert low_level.verify_secret(ENCODED, PASSWORD, low_level.Type.ID)


def main():
    pool = ThreadPoolExecutor(max_workers=2)
    print("ready", flush=True)
    for line in sys.stdin:
        command, n = line.split()
        n = int(n)
        start = time.perf_counter_ns()
        if command == "verify":
            for _ in range(n):
                verify()
        elif command == "verify2":
            for _ in range(n):
                a, b = pool.submit(verify), pool.submit(verify)
                a.result()
                b.result()
        else:
            raise SystemExit(f"unknown command {command}")
        print(time.perf_counter_ns() - start, flush=True)


if __name__ == "__main__":
    main()
