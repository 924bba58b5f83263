#!/usr/bin/env python3
"""Write-ahead log frames a run-log commit writes, by schema: BENCHMARKS.md's count of what
each index of `run_logs` costs a commit. Python's sqlite3 (the same SQLite file format and
B-tree as the server's), the run_logs table of store/schema.rs, batches of N rows of a
~1.2 KB row as the writer commits them, ids version 7 and monotonic as uuid's are; no
checkpoint, so the log's size over the commits is the frames they wrote.

    python3 bench/wal-frames.py            # prints frames per commit for each variant
"""
import os
import sqlite3
import sys
import tempfile
import time

_last = 0


def v7():
    """A version 7 uuid, monotonic in this process (as uuid's ContextV7 makes them)."""
    global _last
    ms = int(time.time() * 1000)
    value = max(ms << 80, _last + 1)
    _last = value
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return "%032x" % value


def frames_per_commit(directory, name, schema, body_len=1000, rows=20000, batch=5):
    path = os.path.join(directory, name + ".db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.executescript(schema)
    body = '{"x":"' + "a" * body_len + '"}'
    n = 0
    for _ in range(0, rows, batch):
        db.execute("BEGIN")
        for _ in range(batch):
            start = time.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (n % 1000000)
            db.execute(
                "INSERT INTO run_logs (uuid, organization_id, hook_id, request_id, queue_id,"
                " annotation_id, email_id, log_level, status, status_code, timestamp, start,"
                ' "end", body) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
                (v7(), 1 + n % 3, 5, v7(), 1, 7, None, "INFO", "completed", None, start,
                 start, start, body),
            )
            n += 1
        db.execute("COMMIT")
    frames = (os.path.getsize(path + "-wal") - 32) / (4096 + 24)
    db.close()
    return frames / (rows / batch)


TABLE = """CREATE TABLE run_logs (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL {unique},
    organization_id INTEGER NOT NULL, hook_id INTEGER NOT NULL, request_id TEXT NOT NULL,
    queue_id INTEGER, annotation_id INTEGER, email_id INTEGER, log_level TEXT NOT NULL,
    status TEXT NOT NULL, status_code INTEGER, timestamp TEXT NOT NULL, start TEXT NOT NULL,
    end TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX run_logs_by_organization ON run_logs(organization_id, start);
CREATE INDEX run_logs_by_request ON run_logs(request_id);
"""
START = "CREATE INDEX run_logs_by_start ON run_logs(start);"

VARIANTS = [
    ("as stored (store/schema.rs)", TABLE.format(unique="UNIQUE") + START, 1000, 5),
    ("without uuid's UNIQUE", TABLE.format(unique="") + START, 1000, 5),
    ("without it and run_logs_by_start", TABLE.format(unique=""), 1000, 5),
    ("as stored, a 300-byte body", TABLE.format(unique="UNIQUE") + START, 300, 5),
    ("as stored, 10 rows a commit", TABLE.format(unique="UNIQUE") + START, 1000, 10),
]

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        for index, (name, schema, body_len, batch) in enumerate(VARIANTS):
            per_commit = frames_per_commit(directory, str(index), schema, body_len, batch=batch)
            print(f"{name:36s} {per_commit:5.2f} frames a commit of {batch}, "
                  f"{per_commit / batch:4.2f} a row")
    sys.exit(0)
