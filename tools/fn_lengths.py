#!/usr/bin/env python3
"""Long functions of host/src, for review: thin handlers and short functions are the house style.

Prints every function in host/src longer than N lines (default 80), longest first, as
`path:line  lines  name`. Exits with status 1 if any handler (a `pub async fn`, of any
`pub(...)` visibility, under host/src/api/) is longer than the handler limit (default 60),
listing those; 0 otherwise.

A function's length counts the lines from its `fn` line to its closing brace, both
included (doc comments and attributes not counted). Braces inside strings, raw strings,
character literals and comments are skipped. Python's standard library only.

Usage: python3 tools/fn_lengths.py [N] [--handler-max M] [--root DIR]
"""

import argparse
import os
import re
import signal
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FN = re.compile(
    r"^[ \t]*(?P<vis>pub(?:\s*\([^)]*\))?\s+)?(?:default\s+)?(?:const\s+)?"
    r"(?P<async>async\s+)?(?:unsafe\s+)?(?:extern\s+\"[^\"]*\"\s+)?fn\s+(?P<name>\w+)",
    re.M,
)


def is_ident(c):
    return c.isalnum() or c == "_"


def raw_string_may_start(text, i):
    """Whether the `r` at `i` may open a raw string (`r"`, `r#"`, `br"`): not the end of
    an identifier, unless the identifier is the `b` of a byte string."""
    if i == 0 or not is_ident(text[i - 1]):
        return True
    return text[i - 1] == "b" and (i < 2 or not is_ident(text[i - 2]))


def code_only(text):
    """`text` with every string, character literal and comment blanked (newlines kept), so
    that the braces left are the code's."""
    out = list(text)
    i, n = 0, len(text)

    def blank(start, end):
        for k in range(start, min(end, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == "r" and raw_string_may_start(text, i):
            m = re.match(r'r(#*)"', text[i:])
            if not m:
                i += 1
                continue
            closing = '"' + m.group(1)
            end = text.find(closing, i + len(m.group(0)))
            end = n if end < 0 else end + len(closing)
            blank(i, end)
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "'":
            # A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if nxt == "\\":
                end = text.find("'", i + 2)
                end = n if end < 0 else end + 1
                blank(i, end)
                i = end
            elif i + 2 < n and text[i + 2] == "'":
                blank(i, i + 3)
                i += 3
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def functions(path):
    """(line, length, name, is_pub_async) of each function with a body in the file."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    code = code_only(text)
    found = []
    for match in FN.finditer(code):
        # The body opens at the first `{` after the signature; a `;` first means none.
        j = match.end()
        while j < len(code) and code[j] not in "{;":
            j += 1
        if j >= len(code) or code[j] == ";":
            continue
        depth, k = 0, j
        while k < len(code):
            if code[k] == "{":
                depth += 1
            elif code[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        first = code.count("\n", 0, match.start("name")) + 1
        last = code.count("\n", 0, k) + 1
        pub_async = bool(match.group("vis")) and bool(match.group("async"))
        found.append((first, last - first + 1, match.group("name"), pub_async))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("max", nargs="?", type=int, default=80,
                        help="print functions longer than this many lines (80)")
    parser.add_argument("--handler-max", type=int, default=60,
                        help="fail if a handler in api/ is longer than this (60)")
    parser.add_argument("--root", default=os.path.join(REPO, "host", "src"),
                        help="the source tree (host/src)")
    args = parser.parse_args()
    # Piped into `head`, stop quietly rather than with a BrokenPipeError.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)

    rows, handlers = [], []
    api = os.path.join(args.root, "api") + os.sep
    for directory, _, names in os.walk(args.root):
        for name in sorted(names):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(directory, name)
            shown = os.path.relpath(path, REPO)
            for line, length, fn, pub_async in functions(path):
                if length > args.max:
                    rows.append((length, shown, line, fn))
                if pub_async and path.startswith(api) and length > args.handler_max:
                    handlers.append((length, shown, line, fn))

    for length, shown, line, fn in sorted(rows, key=lambda row: (-row[0], row[1], row[2])):
        print(f"{shown}:{line}\t{length} lines\t{fn}")
    if not rows:
        print(f"no function in {os.path.relpath(args.root, REPO)} is over {args.max} lines")
    if handlers:
        print(f"\nhandlers in api/ over {args.handler_max} lines:", file=sys.stderr)
        for length, shown, line, fn in sorted(handlers, key=lambda row: (-row[0], row[1])):
            print(f"{shown}:{line}\t{length} lines\t{fn}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
