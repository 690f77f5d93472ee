#!/usr/bin/env python3
"""translate_launches.py — makes a .cu launcher file compilable by g++ for the
CPU emulator (tests/emu/cuda), changing nothing but the launch syntax.

    kernel<T><<<grid, block[, smem[, stream]]>>>(args);
becomes
    ::emu::launch("kernel<T>", "kernels/x.cu", LINE, [=] { kernel<T>(args); }, grid, block[, smem[, stream]]);

on the same lines (a #line directive at the top names the original file, so
compiler messages, sanitizer reports and emulator errors point at the real
source and line).  The arguments are found by bracket matching, so they may
span lines and hold casts and calls.  Anything else that looks like a launch
("<<<" not after a kernel name, no "(" after ">>>") stops the translation with
the line named.

usage: translate_launches.py IN.cu OUT.cpp [--name NAME-FOR-MESSAGES]"""
import os
import re
import sys

KERNEL = re.compile(r"([A-Za-z_][A-Za-z_0-9:]*\s*(?:<[^<>;]*>)?)\s*$")


def fail(path, text, pos, why):
    line = text.count("\n", 0, pos) + 1
    sys.exit(f"{path}:{line}: translate_launches: {why}")


def matching(text, start, open_ch, close_ch, path):
    """Index just past the bracket that closes text[start] (== open_ch)."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c in "\"'":  # skip string / char literals
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    fail(path, text, start, f"unbalanced '{open_ch}'")


def translate(text, path, name):
    out = []
    pos = 0
    while True:
        at = text.find("<<<", pos)
        if at < 0:
            out.append(text[pos:])
            break
        head = text[pos:at]
        km = KERNEL.search(head)
        if not km:
            fail(path, text, at, "'<<<' without a kernel name before it")
        kernel = km.group(1).strip()
        end_cfg = text.find(">>>", at)
        if end_cfg < 0:
            fail(path, text, at, "'<<<' without '>>>'")
        config = text[at + 3:end_cfg]
        paren = end_cfg + 3
        while paren < len(text) and text[paren] in " \t\n":
            paren += 1
        if paren >= len(text) or text[paren] != "(":
            fail(path, text, end_cfg, "no '(' after '>>>'")
        close = matching(text, paren, "(", ")", path)
        args = text[paren + 1:close - 1]
        line = text.count("\n", 0, at) + 1
        out.append(head[:km.start(1)])
        # [=]: the body holds the arguments' values, so that a launch recorded
        # by a stream capture (CUDA graphs) replays with them
        out.append(f'::emu::launch("{kernel}", "{name}", {line}, [=] {{ {kernel}({args}); }}, '
                   f'{config})')
        pos = close
    return "".join(out)


def main():
    args = sys.argv[1:]
    name = None
    if "--name" in args:
        i = args.index("--name")
        name = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    src, dst = args
    with open(src, encoding="utf-8") as f:
        text = f.read()
    name = name or src
    body = translate(text, src, name)
    with open(dst + ".tmp", "w", encoding="utf-8") as f:
        f.write(f'#line 1 "{name}"\n')
        f.write(body)
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
