#!/usr/bin/env python3
"""Reproduces by hand the attacks of issue 13 against a running `wasmhook serve`.

Each subcommand ends with a table of what it measured under the command line that produced
it, to quote in RELIABILITY.md. Standard library only; Python 3.11 on Linux.

Tokens: the server prints its operator token once at its first start; set it with
WASMHOOK_OPERATOR_TOKEN (16 characters or more). `setup` creates an organization "attack-N"
with an admin (POST /organizations, POST /users, POST /auth/login) and prints ADMIN_TOKEN=...:

    WASMHOOK_OPERATOR_TOKEN=operator-token-change-me target/release/wasmhook serve --data-dir /tmp/attack
    eval "$(python3 tools/attack.py setup --url http://127.0.0.1:8080 --token operator-token-change-me)"

connections: holds N idle and M slowloris connections (a request line, then one byte of an
endless header every 0.5 s) from 127.0.0.2 .. 127.0.0.(1+K) while, every 0.5 s, an
authenticated GET /api/v1/organizations goes from 127.0.0.1 on a new connection (10 s
timeout); reports when the server closed them and the latency ordinary requests saw.

    python3 tools/attack.py connections --url http://127.0.0.1:8080 --token operator-token-change-me \\
        --idle 10000 --slowloris 10000 --sources 50 --duration 60

compile-bomb: builds a core module of F empty functions and an exported `_start` (~400 KB
for 100,000), uploads it alone, then P at once, sampling the server's VmRSS every 10 ms.

    python3 tools/attack.py compile-bomb --url http://127.0.0.1:8080 --token $ADMIN_TOKEN \\
        --functions 100000 --parallel 4 --pid $(pgrep -n wasmhook)

logins: N wrong-password logins in a row on one keep-alive connection. Throttling is per
username and per address (127.0.0.1 here): run it last, or wait before logging in again.

    python3 tools/attack.py logins --url http://127.0.0.1:8080 --username $ADMIN_USERNAME --attempts 300
"""

import argparse
import errno
import http.client
import ipaddress
import json
import resource
import secrets
import selectors
import shlex
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

Server = tuple[str, int]
Row = list[object]


# ---------------------------------------------------------------- HTTP and output helpers

def parse_url(url: str) -> Server:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        sys.exit(f"--url must be http://HOST:PORT, not {url!r}")
    return parts.hostname, parts.port or 80


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def field(self, name: str) -> object:
        try:
            return json.loads(self.body).get(name)
        except (ValueError, AttributeError):
            return None

    def detail(self) -> str:  # the first 200 characters of the error, or of the answer
        return " ".join(str(self.field("detail") or self.body.decode("utf-8", "replace")).split())[:200]


def request(server: Server, method: str, path: str, *, token: str | None = None,
            body: bytes | None = None, content_type: str | None = None, timeout: float = 30.0,
            source: str | None = None, connection: http.client.HTTPConnection | None = None) -> Answer:
    """One request: on `connection` (left open), else on a new connection closed afterwards."""
    own = connection or http.client.HTTPConnection(
        *server, timeout=timeout, source_address=(source, 0) if source else None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if content_type:
        headers["Content-Type"] = content_type
    started = time.monotonic()
    try:
        own.request(method, "/api/v1" + path, body=body, headers=headers)
        response = own.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data,
                      time.monotonic() - started)
    finally:
        if connection is None:
            own.close()


def post_json(server: Server, path: str, value: dict, token: str | None = None) -> Answer:
    return request(server, "POST", path, token=token, body=json.dumps(value).encode(),
                   content_type="application/json")


def error_name(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timeout"
    code = getattr(error, "errno", None)
    return errno.errorcode.get(code, type(error).__name__) if code else type(error).__name__


def counts(counter: Counter) -> str:
    return ", ".join(f"{key} x{n}" for key, n in counter.most_common()) or "-"


def print_table(title: str, header: list[str], rows: list[Row]) -> None:
    cells = [header] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths))


def print_command() -> None:
    # Tokens are credentials: the command is printed with a placeholder in their place.
    words = list(sys.argv[1:])
    for index, word in enumerate(words[:-1]):
        if word == "--token":
            words[index + 1] = "$TOKEN"
    print("\ncommand: python3 tools/attack.py " + " ".join(
        word if word == "$TOKEN" else shlex.quote(word) for word in words))


# ---------------------------------------------------------------- setup

def cmd_setup(args: argparse.Namespace) -> None:
    server, n = parse_url(args.url), int(time.time())
    username, password = f"attack-{n}-admin", secrets.token_urlsafe(18)

    def post(path: str, body: dict, token: str | None) -> Answer:
        answer = post_json(server, path, body, token)
        if answer.status not in (200, 201):
            sys.exit(f"POST /api/v1{path}: {answer.status} {answer.detail()}")
        return answer

    organization = post("/organizations", {"name": f"attack-{n}"}, args.token).field("url")
    post("/users", {"username": username, "password": password, "role": "admin",
                    "organization": organization}, args.token)
    key = post("/auth/login", {"username": username, "password": password}, None).field("key")
    print(f"ORGANIZATION={organization}\nADMIN_USERNAME={username}\n"
          f"ADMIN_PASSWORD={password}\nADMIN_TOKEN={key}")


# ---------------------------------------------------------------- connections

SLOWLORIS_PREFIX = b"GET /api/v1/organizations HTTP/1.1\r\nHost: attack\r\nX-Slowloris: "
CONNECT_TIMEOUT_S = 10.0  # a connect not done by then (the server's backlog is full) failed
CONNECT_WINDOW = 512  # connects in progress at once


@dataclass(eq=False)
class Conn:
    kind: str  # "idle" or "slowloris"
    source: str
    sock: socket.socket | None = None
    started: float = 0.0
    opened: float | None = None  # when connect() succeeded
    closed: float | None = None  # when the server closed it
    answered: str | None = None  # the first line the server sent, if any


class Attack:
    """The attack connections, driven from one thread through one selector (epoll)."""

    def __init__(self, server: Server) -> None:
        self.server, self.selector = server, selectors.DefaultSelector()
        self.failures: Counter = Counter()
        self.connecting: set[Conn] = set()

    def start(self, conn: Conn) -> None:
        conn.started, sock = time.monotonic(), None
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # The port is chosen at connect, per destination: more connections per source.
            sock.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
            sock.setblocking(False)
            sock.bind((conn.source, 0))
            code = sock.connect_ex(self.server)
        except OSError as error:
            code = error.errno or errno.EIO
        if sock is None or code not in (0, errno.EINPROGRESS):
            self.failures[errno.errorcode.get(code, str(code))] += 1
            if sock is not None:
                sock.close()
            return
        conn.sock = sock
        self.connecting.add(conn)
        self.selector.register(sock, selectors.EVENT_WRITE, conn)

    def drop(self, conn: Conn, failure: str | None = None) -> None:
        if failure:  # the connect failed
            self.failures[failure] += 1
            self.connecting.discard(conn)
        elif conn.closed is None:
            conn.closed = time.monotonic()
        if conn.sock is not None:
            self.selector.unregister(conn.sock)
            conn.sock.close()
            conn.sock = None

    def send(self, conn: Conn, data: bytes) -> None:
        try:
            if conn.sock is not None:
                conn.sock.send(data)
        except BlockingIOError:
            pass
        except OSError:
            self.drop(conn)

    def poll(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            conn: Conn = key.data
            if conn.sock is None:
                continue
            if conn.opened is None:  # the connect finished
                self.connecting.discard(conn)
                code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    self.drop(conn, errno.errorcode.get(code, str(code)))
                    continue
                conn.opened = time.monotonic()
                self.selector.modify(conn.sock, selectors.EVENT_READ, conn)
                if conn.kind == "slowloris":
                    self.send(conn, SLOWLORIS_PREFIX)
                continue
            try:
                data = conn.sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # closed by the server (FIN or RST)
                self.drop(conn)
            elif conn.answered is None:
                conn.answered = data.split(b"\r\n", 1)[0].decode("latin-1")[:40]
        now = time.monotonic()
        for conn in [c for c in self.connecting if now - c.started > CONNECT_TIMEOUT_S]:
            self.drop(conn, "timeout")


def cmd_connections(args: argparse.Namespace) -> None:
    server, wanted = parse_url(args.url), args.idle + args.slowloris
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as error:
        print(f"could not raise RLIMIT_NOFILE: {error}")
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(f"RLIMIT_NOFILE soft limit raised from {soft} to {limit}", flush=True)
    if wanted + 200 > limit:
        print(f"warning: {wanted} connections need more descriptors than this process may open")
    first = ipaddress.IPv4Address("127.0.0.2")
    kinds = ["idle"] * args.idle + ["slowloris"] * args.slowloris
    conns = [Conn(kind, str(first + i % args.sources)) for i, kind in enumerate(kinds)]
    to_open, attack = conns[::-1], Attack(server)  # popped from the end: opened in order
    probes: list[tuple[float, float, str]] = []  # start, seconds, "200" or what went wrong
    probe_source = "127.0.0.1" if server[0].startswith("127.") or server[0] == "localhost" else None

    def probe() -> None:
        begun = time.monotonic()
        try:
            outcome = str(request(server, "GET", "/organizations", token=args.token, timeout=10.0,
                                  source=probe_source).status)
        except (OSError, http.client.HTTPException) as error:
            outcome = error_name(error)
        probes.append((begun, time.monotonic() - begun, outcome))  # list.append is atomic

    pool = ThreadPoolExecutor(max_workers=24)  # 10 s timeout / 0.5 s: at most 20 in flight
    started = next_tick = next_report = time.monotonic()
    opened_all, end = 0.0, float("inf")
    while (now := time.monotonic()) < end:
        while to_open and len(attack.connecting) < CONNECT_WINDOW:
            attack.start(to_open.pop())
        attack.poll(max(0.0, min(next_tick - now, 0.1)))
        now = time.monotonic()
        if not opened_all and not to_open and not attack.connecting:
            opened_all, end = now, now + args.duration
            print(f"{now - started:6.1f} s: {sum(c.opened is not None for c in conns)} opened, "
                  f"{sum(attack.failures.values())} failed; holding for {args.duration:g} s", flush=True)
        if now >= next_tick:  # every 0.5 s: an ordinary request, and a byte on each slowloris
            next_tick = max(next_tick + 0.5, now)
            pool.submit(probe)
            for conn in conns:
                if conn.kind == "slowloris" and conn.sock is not None and conn.opened is not None:
                    attack.send(conn, b"a")
        if now >= next_report:
            next_report += 5.0
            held = Counter(c.kind for c in conns if c.sock is not None and c.opened is not None)
            shut = Counter(c.kind for c in conns if c.closed is not None)
            recent = [p for p in probes if p[0] >= now - 5.0]
            print(f"{now - started:6.1f} s: open idle {held['idle']}, slowloris {held['slowloris']}; "
                  f"closed by the server idle {shut['idle']}, slowloris {shut['slowloris']}; last 5 s "
                  f"{sum(p[2] == '200' for p in recent)} of {len(recent)} requests answered 200", flush=True)
    pool.shutdown(wait=True)  # the requests in flight end within their 10 s
    opened = [c for c in conns if c.opened is not None]
    print_command()
    print_table("connections", ["measure", "value"], [
        ["sources", f"127.0.0.2 .. {first + (args.sources - 1)}"],
        ["opened", f"{len(opened)} of {wanted} in {opened_all - started:.1f} s"],
        ["connect() failed", counts(attack.failures) if attack.failures else "0"],
        ["held", f"{args.duration:g} s after the last was opened"]])
    rows: list[Row] = []
    for kind in ("idle", "slowloris"):
        mine = [c for c in opened if c.kind == kind]
        after = [c.closed - c.opened for c in mine if c.closed is not None and c.opened is not None]
        spread = f"{min(after):.1f} / {statistics.median(after):.1f} / {max(after):.1f} s" if after else "-"
        rows.append([kind, len(mine), len(after), spread, len(mine) - len(after),
                     counts(Counter(repr(c.answered) for c in mine if c.answered))])
    print_table("attack connections", ["kind", "opened", "closed by the server", "closed after "
                "(min / median / max)", "open at the end", "server sent before closing"], rows)
    table = []
    for label, since in (("whole run", started), ("while all were held", opened_all)):
        chosen = [p for p in probes if p[0] >= since]
        ok = [seconds for _, seconds, outcome in chosen if outcome == "200"]
        other = Counter(outcome for _, _, outcome in chosen if outcome != "200")
        table.append([label, len(chosen), len(ok), sum(other.values()), counts(other),
                      f"{statistics.median(ok) * 1000:.1f} ms" if ok else "-",
                      f"{max(ok) * 1000:.1f} ms" if ok else "-"])
    print_table("ordinary requests (GET /api/v1/organizations, new connection, 10 s timeout)",
                ["when", "made", "200", "failed/other", "outcomes", "p50", "max"], table)


# ---------------------------------------------------------------- compile bomb

def leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def section(section_id: int, content: bytes) -> bytes:
    return bytes([section_id]) + leb128(len(content)) + content


def bomb_module(functions: int) -> bytes:
    """`_start` (function 0) and `functions` more empty functions, all of type () -> ()."""
    count, name = functions + 1, b"_start"
    types = leb128(1) + b"\x60\x00\x00"  # one func type: no parameters, no results
    funcs = leb128(count) + b"\x00" * count  # each function has type 0
    exports = leb128(1) + leb128(len(name)) + name + b"\x00" + leb128(0)  # function 0
    code = leb128(count) + b"\x02\x00\x0b" * count  # each body: size 2, no locals, end
    return (b"\x00asm\x01\x00\x00\x00" + section(1, types) + section(3, funcs)
            + section(7, exports) + section(10, code))


def vm_rss_kb(pid: int | None) -> int:
    if pid is None:
        return 0
    with open(f"/proc/{pid}/status") as status:
        return next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)


def cmd_compile_bomb(args: argparse.Namespace) -> None:
    server, module = parse_url(args.url), bomb_module(args.functions)
    print(f"module: {len(module)} bytes, {args.functions + 1} functions", flush=True)
    try:
        before = vm_rss_kb(args.pid)
    except OSError as error:
        sys.exit(f"--pid {args.pid}: {error}")
    samples: list[tuple[float, int]] = []  # (time, VmRSS kB), every 10 ms
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.01):
            try:
                samples.append((time.monotonic(), vm_rss_kb(args.pid)))
            except OSError:
                return  # the server is gone

    def peak(start: float, end: float) -> int:
        return max((kb for at, kb in samples if start <= at <= end), default=0)

    if args.pid:
        threading.Thread(target=sample, daemon=True).start()
    barrier = threading.Barrier(args.parallel)

    def upload(together: bool) -> Row:
        if together:
            barrier.wait()
        try:
            answer = request(server, "POST", "/modules?name=bomb", token=args.token, body=module,
                             content_type="application/wasm", timeout=args.timeout)
            return [answer.status, f"{answer.seconds:.2f} s", answer.detail()]
        except (OSError, http.client.HTTPException) as error:
            return ["-", "-", f"{error_name(error)}: {error}"]

    t0 = time.monotonic()
    single = upload(False)
    t1, after_single = time.monotonic(), vm_rss_kb(args.pid)
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        parallel = list(pool.map(upload, [True] * args.parallel))
    t2, after_parallel = time.monotonic(), vm_rss_kb(args.pid)
    peak_single = max(peak(t0, t1), before, after_single)  # the ends too: uploads may be quick
    peak_parallel = max(peak(t1, t2), after_single, after_parallel)
    time.sleep(args.settle if args.pid else 0)
    settled = vm_rss_kb(args.pid)
    sampling.set()
    mib = (lambda kb: f"{kb / 1024:.0f} MiB" if kb else "- (no --pid)")
    print_command()
    print_table(f"uploads of a {len(module)}-byte core module with {args.functions + 1} functions",
                ["upload", "status", "latency", "detail (first 200 characters)"],
                [["alone", *single]] + [[f"{i + 1} of {args.parallel} at once", *row]
                                        for i, row in enumerate(parallel)])
    print_table(f"server RSS (VmRSS of pid {args.pid}, sampled every 10 ms)", ["when", "RSS"], [
        ["before", mib(before)], ["peak during the upload alone", mib(peak_single)],
        ["after it", mib(after_single)], [f"peak during the {args.parallel} at once", mib(peak_parallel)],
        ["after them", mib(after_parallel)], [f"{args.settle:g} s later", mib(settled)]])


# ---------------------------------------------------------------- logins

def cmd_logins(args: argparse.Namespace) -> None:
    server = parse_url(args.url)
    statuses: Counter = Counter()
    retry_after: Counter = Counter()
    first_429: int | None = None
    connection = http.client.HTTPConnection(*server, timeout=30.0)
    started = time.monotonic()
    for attempt in range(1, args.attempts + 1):
        body = json.dumps({"username": args.username, "password": f"wrong-password-{attempt}"})
        answer = None
        for _ in range(2):  # once more, on a new connection, if the server closed this one
            try:
                answer = request(server, "POST", "/auth/login", body=body.encode(),
                                 content_type="application/json", connection=connection)
                break
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(*server, timeout=30.0)
        statuses[answer.status if answer else "no answer"] += 1
        if answer is not None and answer.status == 429:
            first_429 = first_429 or attempt
            retry_after[answer.headers.get("retry-after", "(none)")] += 1
    total = max(time.monotonic() - started, 1e-6)
    connection.close()
    print_command()
    print_table(f"{args.attempts} wrong-password logins for {args.username!r}", ["measure", "value"], [
        ["answers by status", ", ".join(f"{k}: {n}" for k, n in sorted(statuses.items(), key=str))],
        ["first attempt answered 429", first_429 or "none"],
        ["Retry-After values (s)", ", ".join(f"{k} x{n}" for k, n in sorted(
            retry_after.items(), key=lambda kn: (len(kn[0]), kn[0]))) or "-"],
        ["total time", f"{total:.2f} s ({args.attempts / total:.0f} attempts a second)"]])


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, run, summary, options in [
        ("setup", cmd_setup, "create an organization attack-N with an admin; print ADMIN_TOKEN=...",
         [("--token", str, None, "the operator's token")]),
        ("connections", cmd_connections, "hold idle and slowloris connections during ordinary requests",
         [("--token", str, None, "a token for the ordinary requests (the operator's)"),
          ("--idle", int, 1000, "idle connections"), ("--slowloris", int, 1000, "slowloris connections"),
          ("--sources", int, 10, "source addresses, from 127.0.0.2"),
          ("--duration", float, 60.0, "seconds to hold them once all are open")]),
        ("compile-bomb", cmd_compile_bomb, "upload a module of many empty functions, alone and at once",
         [("--token", str, None, "an admin's token (see setup)"),
          ("--functions", int, 100_000, "empty functions"), ("--parallel", int, 4, "uploads at once"),
          ("--pid", int, 0, "the server's process id, to sample its VmRSS (0: do not)"),
          ("--settle", float, 5.0, "seconds after the uploads to read the RSS again"),
          ("--timeout", float, 300.0, "seconds per upload")]),
        ("logins", cmd_logins, "wrong-password logins, one after another, as fast as answered",
         [("--username", str, None, "a username (unknown ones are answered alike)"),
          ("--attempts", int, 300, "attempts")]),
    ]:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(run=run)
        sub.add_argument("--url", default="http://127.0.0.1:8080", help="the server (%(default)s)")
        for flag, kind, default, text in options:
            sub.add_argument(flag, type=kind, default=default, required=default is None,
                             help=text if default is None else f"{text} (%(default)s)")
    args = parser.parse_args()
    if min(getattr(args, "sources", 1), getattr(args, "parallel", 1)) < 1:
        parser.error("--sources and --parallel must be at least 1")
    if getattr(args, "pid", None) == 0:
        args.pid = None
    args.run(args)


if __name__ == "__main__":
    main()
