#!/usr/bin/env python3
"""check_layout.py — holds the code to the layout rules of ARCHITECTURE.md.

The folder tree is the architecture: each product folder is a room, and a
room may include only the rooms listed under it in ROOMS (arrows point down).
Checked on every C/CUDA source and header of the product rooms:

  1. every product folder is a room of the table (a new folder must be placed);
  2. every quoted #include names an existing file, by its path from the root;
  3. a room includes only itself and the rooms it may use: base/ nothing of
     armo, weights/ and kernels/ nothing of host/, host/text/ and host/engine/
     not each other, nothing but host/cli/ itself includes host/cli/ (tests,
     tools and profiling neither);
  4. a room's internal headers (INTERNAL) are included only from inside it;
  5. CUDA headers (<cuda*.h>, <cublas*.h>, NVTX, ...) only in kernels/ and
     host/cuda/, directly or through a header of another room;
  6. no include cycle between modules (a module: the .c/.cu/.h/.cuh files of
     one name in one folder);
  7. no function in base/, weights/ or host/ longer than MAX_FUNCTION_LINES
     lines unless the comment right above it says why ("long function: ...").

Run from anywhere: python3 tools/check_layout.py [ROOT].  Prints each
violation as path:line: rule: detail and exits 1 when there is any; exit 0
and one summary line otherwise.  --self-test builds a small tree that breaks
every rule once and checks that each is reported (so the check can fail).
Used by the ctest layout_rules. """
import os
import re
import sys
import tempfile

# room -> the rooms its files may include (itself is always allowed)
ROOMS = {
    "base": [],
    "weights": ["base"],
    "kernels": ["base", "weights"],
    "host/text": ["base", "weights"],
    "host/engine": ["base", "weights"],
    "host/cuda": ["base", "weights", "kernels", "host/engine"],
    "host/scoring": ["base", "weights", "host/text", "host/engine"],
    "host/train": ["base", "weights", "host/text", "host/engine", "host/scoring"],
    "host/dist": ["base", "weights", "host/engine", "host/scoring"],
    "host/report": ["base"],
    "host/serve": ["base", "weights", "host/text", "host/engine", "host/scoring"],
    "host/cli": ["base", "weights", "host/text", "host/engine", "host/cuda", "host/scoring",
                 "host/train", "host/dist", "host/report", "host/serve"],
    "host/api": ["base", "weights", "host/text", "host/engine", "host/cuda", "host/scoring"],
}
# folders that hold rooms but are none themselves
CONTAINERS = {"host"}
# headers only their own room may include
INTERNAL = {
    "host/engine/cpu_ops.h",
    "host/engine/cpu_backend.h",
    "host/engine/cpu_gemm.h",
    "host/engine/cpu_attn.h",
    "host/text/tokenizer_internal.h",
    "host/cuda/gemm_ceiling.h",
}
INTERNAL_PATTERNS = [re.compile(r"^kernels/.*\.cuh$")]
# rooms whose files may include CUDA headers
CUDA_ROOMS = {"kernels", "host/cuda"}
CUDA_HEADER = re.compile(
    r"^(cuda[A-Za-z0-9_]*\.h|cuda_[A-Za-z0-9_]*\.hpp|cublas[A-Za-z0-9_]*\.h|nvtx3/.*|"
    r"nvToolsExt[A-Za-z0-9_]*\.h|curand[A-Za-z0-9_]*\.h|cufft[A-Za-z0-9_]*\.h|"
    r"cusparse[A-Za-z0-9_]*\.h|cusolver[A-Za-z0-9_]*\.h|nccl\.h|cudnn[A-Za-z0-9_]*\.h)$")
# folders whose C code is not product code but must not include host/cli
NON_ROOMS = ["tests", "tools", "profiling", "examples", "cmake", "python"]
SOURCE_EXT = (".c", ".h", ".cu", ".cuh", ".cpp")
MAX_FUNCTION_LINES = 150
LONG_MARK = "long function:"
# the rooms whose functions are measured (host code, C)
MEASURED = ("base/", "weights/", "host/")

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def room_of(path):
    """The room a repository path belongs to, or None."""
    for room in sorted(ROOMS, key=len, reverse=True):
        if path.startswith(room + "/"):
            return room
    return None


def module_of(path):
    return os.path.splitext(path)[0]


def is_internal(path):
    return path in INTERNAL or any(p.match(path) for p in INTERNAL_PATTERNS)


def scan(root):
    """{path: [(line, kind, target)]} for product files; list of non-room files."""
    product, others = {}, []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        top = rel_dir.split("/")[0] if rel_dir else ""
        if top.startswith(".") or top.startswith("build"):
            dirnames[:] = []
            continue
        for f in filenames:
            if not f.endswith(SOURCE_EXT):
                continue
            path = f"{rel_dir}/{f}" if rel_dir else f
            incs = []
            with open(os.path.join(dirpath, f), encoding="utf-8", errors="replace") as fh:
                for i, line in enumerate(fh, 1):
                    m = INCLUDE.match(line)
                    if m:
                        incs.append((i, m.group(1), m.group(2)))
            if top in NON_ROOMS or not rel_dir:
                others.append((path, incs))
            else:
                product[path] = incs
    return product, others


def function_lengths(text):
    """(first line, length, name, comment above) of each top-level C function."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        head = re.match(r"^[A-Za-z_][\w \*\(\),]*?\b(\w+)\s*\(", line)
        if head and not line.startswith(("typedef", "struct", "enum", "union", "#")) \
                and not line.rstrip().endswith(";") and "=" not in line.split("(")[0]:
            # find the opening brace of a definition (signature may span lines)
            j = i
            while j < len(lines) and "{" not in lines[j] and not lines[j].rstrip().endswith(";"):
                j += 1
            if j < len(lines) and "{" in lines[j] and lines[j].rstrip().endswith("{"):
                k = j + 1
                while k < len(lines) and not lines[k].startswith("}"):
                    k += 1
                above = []
                a = i - 1
                while a >= 0 and (lines[a].startswith(("/*", " *", "//")) or lines[a].endswith("*/")):
                    above.insert(0, lines[a])
                    a -= 1
                out.append((i + 1, k - i + 1, head.group(1), "\n".join(above)))
                i = k + 1
                continue
        i += 1
    return out


def check(root):
    problems = []

    def bad(path, line, rule, detail):
        problems.append(f"{path}:{line}: {rule}: {detail}")

    product, others = scan(root)
    resolved = {}  # path -> [(line, target path)] for quoted includes that exist
    for path, incs in sorted(product.items()):
        room = room_of(path)
        if room is None:
            folder = path.rsplit("/", 1)[0]
            if folder not in CONTAINERS:
                bad(path, 1, "unknown room",
                    f"{folder}/ is no room of tools/check_layout.py's table; place it there "
                    "(and in ARCHITECTURE.md) with the rooms it may include")
            continue
        resolved[path] = []
        for line, kind, target in incs:
            if kind == "<":
                if CUDA_HEADER.match(target) and room not in CUDA_ROOMS:
                    bad(path, line, "CUDA header outside kernels/ and host/cuda/", f"<{target}>")
                continue
            if not os.path.isfile(os.path.join(root, target)):
                bad(path, line, "include not found",
                    f'"{target}" (includes name files by their path from the repository root)')
                continue
            resolved[path].append((line, target))
            troom = room_of(target)
            if troom is None:
                bad(path, line, "include outside the rooms", f'"{target}"')
            elif troom != room and troom not in ROOMS[room]:
                allowed = ", ".join(ROOMS[room]) or "nothing of armo"
                bad(path, line, "arrow against the layout",
                    f'{room}/ includes "{target}" ({troom}/); it may include {allowed}')
            elif troom != room and is_internal(target):
                bad(path, line, "internal header", f'"{target}" is internal to {troom}/')

    for path, incs in others:
        for line, kind, target in incs:
            if kind == '"' and target.startswith("host/cli/"):
                bad(path, line, "host/cli/ included", f'"{target}": nothing includes the CLI')

    # 5, transitively: a header of another room must not bring a CUDA header in
    direct_cuda = {p for p, incs in product.items()
                   if any(k == "<" and CUDA_HEADER.match(t) for _, k, t in incs)}
    for path in sorted(resolved):
        if room_of(path) in CUDA_ROOMS:
            continue
        seen, stack = set(), [(t, [t], line) for line, t in resolved[path]]
        while stack:
            f, chain, line = stack.pop()
            if f in seen:
                continue
            seen.add(f)
            if f in direct_cuda:
                bad(path, line, "CUDA header outside kernels/ and host/cuda/",
                    "through " + " -> ".join(chain))
                break
            stack.extend((t, chain + [t], line) for _, t in resolved.get(f, []))

    # 6. cycles between modules
    graph = {}
    for path, incs in resolved.items():
        a = module_of(path)
        for _, t in incs:
            b = module_of(t)
            if a != b:
                graph.setdefault(a, set()).add(b)
    state, cycles = {}, []

    def visit(n, stack):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m, stack)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [])
    for c in cycles:
        bad(c[0], 1, "include cycle", " -> ".join(c))

    # 7. function length
    for path in sorted(product):
        if not path.startswith(MEASURED) or not path.endswith(".c"):
            continue
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for line, length, name, above in function_lengths(text):
            if length > MAX_FUNCTION_LINES and LONG_MARK not in above:
                bad(path, line, "long function",
                    f"{name}() is {length} lines (> {MAX_FUNCTION_LINES}): split it, or say "
                    f"why in the comment above it ('{LONG_MARK} ...')")
    return problems, len(product)


def self_test():
    """A tree that breaks each rule once; every rule must be reported."""
    files = {
        "base/errors.h": '#include "weights/config.h"\n',            # 3: base includes weights
        "weights/config.h": '#include "host/text/tok.h"\n',          # 3: weights includes host
        "host/text/tok.h": '#include "host/engine/backend.h"\n',     # 3: text includes engine
        "host/engine/backend.h": '#include <cuda_runtime_api.h>\n',  # 5: CUDA header
        "host/engine/cpu_ops.h": "",
        "host/cuda/x.h": "#include <cuda_runtime_api.h>\n",
        "host/cli/main.c": '#include "host/cuda/x.h"\n',              # 5: through a header
        "host/scoring/out.c": '#include "host/engine/cpu_ops.h"\n#include "host/nope.h"\n'
                              '#include "host/scoring/out2.h"\n',     # 4, 2
        "host/scoring/out2.h": '#include "host/scoring/out.h"\n',
        "host/scoring/out.h": '#include "host/scoring/out2.h"\n',     # 6: cycle
        "host/newroom/a.c": "",                                       # 1: unknown room
        "tests/t.c": '#include "host/cli/main.c"\n',                  # 3: cli included
        "host/engine/long.c": "int f(void) {\n" + "    x();\n" * 160 + "}\n",  # 7
    }
    expect = ["arrow against the layout", "CUDA header outside", "internal header",
              "include not found", "include cycle", "unknown room", "host/cli/ included",
              "long function"]
    with tempfile.TemporaryDirectory() as d:
        for p, s in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, p)), exist_ok=True)
            with open(os.path.join(d, p), "w") as fh:
                fh.write(s)
        problems, _ = check(d)
    missing = [r for r in expect if not any(r in p for p in problems)]
    arrows = sum("arrow against the layout" in p for p in problems)
    via = any("through host/cuda/x.h" in p for p in problems)
    if missing or arrows != 3 or not via:
        print("check_layout self-test FAILED: not reported:", missing,
              f"(arrows {arrows} of 3, CUDA through a header {via})")
        print("\n".join(problems))
        return 1
    print(f"check_layout self-test: all {len(expect)} kinds of violation reported "
          f"({len(problems)} reports)")
    return 0


def main(argv):
    if len(argv) > 1 and argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(argv) > 1 and argv[1] == "--self-test":
        return self_test()
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    problems, n = check(os.path.abspath(root))
    for p in problems:
        print(p)
    if problems:
        print(f"check_layout: {len(problems)} violation(s) of the layout rules (ARCHITECTURE.md)")
        return 1
    print(f"check_layout: {n} product files hold to the layout rules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
