#!/usr/bin/env python3
"""kernel_static.py — static evidence per CUDA kernel, from the compiler alone.

For every kernel in kernels/*.cu, on every architecture CMakeLists.txt builds
for (sm_80, sm_90a): ptxas's register count, spill stores/loads, stack frame
and static shared memory; the theoretical occupancy that follows from them and
the threads per block the kernel is launched with; and, from the SASS, the
number of tensor-core (HMMA) instructions.  No GPU is needed: this is what CI
can prove about the kernels on a machine that only has nvcc.

Why it is shaped so:
  * nvcc runs once per .cu with CMakeLists.txt's own ARMO_CUDA_GENCODE /
    ARMO_CUDA_FLAGS (read from that file, so the two cannot drift) plus the
    Release flags and the armo_cuda definitions, and `-Xptxas -v -keep`: one
    compile gives both the ptxas report and the per-arch cubins.
  * Threads per block come from __launch_bounds__ where a kernel has one, else
    from LAUNCH_TABLE below, which names the block-size expression of the
    kernel's launch in its .cu launcher; the script checks that the launcher
    still says so.  A kernel known to neither stops the run, so a new kernel
    cannot go unreported.
  * HMMA is counted with cuobjdump -sass when cuobjdump is installed, and
    otherwise by reading the cubin's ELF .text sections directly (the CUDA
    toolkit does not always ship cuobjdump; CI has nvcc only).  Where both
    are available they must agree.
Modes: (none) prints the table; --markdown prints it as Markdown; --check
prints it and exits 1 if a kernel spills, if a flash_attn_kernel or
pipelined_attn_kernel instantiation has no HMMA on some arch, if static shared
memory exceeds 48 KB, or if no block fits on an SM.  Exit 77 when nvcc is not
found (ctest: skipped).
Python 3 standard library only.
"""
import argparse
import ast
import concurrent.futures
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_EXIT = 77

# Flags CMake adds around ARMO_CUDA_FLAGS for kernels/*.cu in armo_cuda
# (build.ninja: CMAKE_CUDA_FLAGS_RELEASE, target definitions, -std of
# CMAKE_CUDA_STANDARD 17).
RELEASE_FLAGS = ["-O3", "-DNDEBUG", "-std=c++17"]
ARMO_CUDA_DEFINES = ["-DARMO_HAVE_CUDA=1", "-D_GNU_SOURCE"]

# Per-SM limits of each architecture, as the occupancy calculator uses them.
# Sources:
#  - CUDA C++ Programming Guide, "Compute Capabilities", technical
#    specifications per compute capability
#    (docs.nvidia.com/cuda/cuda-programming-guide/05-appendices/compute-capabilities.html):
#    64K 32-bit registers per SM and per block, 255 registers per thread,
#    64 resident warps and 32 resident blocks per SM on 8.0 and 9.0, 1024
#    threads per block, 48 KB of static shared memory per block; shared
#    memory per SM up to 164 KB on 8.0 and 228 KB on 9.0.
#  - NVIDIA Ampere and Hopper tuning guides (docs.nvidia.com/cuda/
#    ampere-tuning-guide, hopper-tuning-guide): the same 164 KB / 228 KB, and
#    1 KB of shared memory per block reserved for system use.
#  - The occupancy calculator's own rules, /usr/local/cuda/include/
#    cuda_occupancy.h (CUDA 13.0): registers allocated per warp in units of
#    256 (cudaOccRegAllocationGranularity), spread over 4 sub-partitions
#    (cudaOccSubPartitionsPerMultiprocessor, cudaOccMaxBlocksPerSMRegsLimit);
#    shared memory allocated in 128-byte units
#    (cudaOccSMemAllocationGranularity) after adding
#    reservedSharedMemPerBlock; 32 blocks per SM on 8.0 and 9.0
#    (cudaOccMaxBlocksPerMultiprocessor); with the default carveout the
#    whole shared memory of the SM is available
#    (cudaOccSMemPreferenceVoltaPlus).
ARCH_LIMITS = {
    "sm_80": dict(regs_per_sm=65536, regs_per_block=65536, max_regs_per_thread=255,
                  reg_alloc_unit=256, sub_partitions=4, max_warps_per_sm=64,
                  max_blocks_per_sm=32, max_threads_per_block=1024,
                  smem_per_sm=164 * 1024, smem_reserved_per_block=1024,
                  smem_alloc_unit=128, max_static_smem_per_block=48 * 1024),
    "sm_90a": dict(regs_per_sm=65536, regs_per_block=65536, max_regs_per_thread=255,
                   reg_alloc_unit=256, sub_partitions=4, max_warps_per_sm=64,
                   max_blocks_per_sm=32, max_threads_per_block=1024,
                   smem_per_sm=228 * 1024, smem_reserved_per_block=1024,
                   smem_alloc_unit=128, max_static_smem_per_block=48 * 1024),
}
WARP_SIZE = 32

# Threads per block of the kernels without __launch_bounds__: the launcher
# file, the block-size argument exactly as its <<<grid, BLOCK, ...>>> spells
# it (checked against the source on every run), and, where that argument is
# only known at run time, the value used here with the reason.
LAUNCH_TABLE = {
    # RMS_THREADS = 256 (rmsnorm.cuh), LIN_WARPS * 32 = 256 (head.cuh)
    "rmsnorm_kernel":          dict(launcher="rmsnorm.cu", block="RMS_THREADS"),
    "add_rmsnorm_kernel":      dict(launcher="rmsnorm.cu", block="RMS_THREADS"),
    "add_rmsnorm_f32_kernel":  dict(launcher="rmsnorm.cu", block="RMS_THREADS"),
    "embed_vec_kernel":        dict(launcher="embedding.cu", block="128"),
    "embed_scalar_kernel":     dict(launcher="embedding.cu", block="256"),
    "gather_rows_bf16_kernel": dict(launcher="gather.cu", block="256"),
    "gather_rows_f32_kernel":  dict(launcher="gather.cu", block="256"),
    "gather_rows2_bf16_kernel": dict(launcher="gather.cu", block="256"),
    "linear_f32_kernel":       dict(launcher="head.cu", block="LIN_WARPS * 32"),
    "armo_gate_kernel":        dict(launcher="head.cu", block="threads", threads=32,
                                    why="(k + 31) / 32 * 32 at run time; ArmoRM's k = 19 -> 32"),
    "rope_kernel":             dict(launcher="rope.cu", block="128"),
    "swiglu_pair_kernel":      dict(launcher="swiglu.cu", block="256"),
    "swiglu_scalar_kernel":    dict(launcher="swiglu.cu", block="256"),
}

# Kernels whose every instantiation must hold tensor-core instructions.
TENSOR_CORE_KERNELS = ("flash_attn_kernel", "pipelined_attn_kernel")
# SASS opcode of HMMA in the low 12 bits of a 128-bit sm_80 / sm_90 instruction
# (cuobjdump prints e.g. "HMMA.16816.F32.BF16 ... /* 0x...723c */").
HMMA_OPCODE = 0x23C


class StaticCheckError(Exception):
    """A problem with the inputs (compile failure, unknown kernel, stale table)."""


# ---------------------------------------------------------------- compiling --

def cmake_cuda_flags(cmakelists):
    """ARMO_CUDA_FLAGS of CMakeLists.txt, with ${ARMO_CUDA_GENCODE} expanded."""
    with open(cmakelists, encoding="utf-8") as f:
        text = f.read()

    def cmake_list(var):
        m = re.search(r"set\(\s*" + var + r"\s+(.*?)\)", text, re.S)
        if not m:
            raise StaticCheckError(f"{cmakelists}: no set({var} ...) found; "
                                   "tools/kernel_static.py reads the CUDA flags from there")
        body = re.sub(r"#[^\n]*", "", m.group(1))
        return [tok.strip('"') for tok in body.split()]

    gencode = cmake_list("ARMO_CUDA_GENCODE")
    flags = []
    for tok in cmake_list("ARMO_CUDA_FLAGS"):
        flags.extend(gencode if tok == "${ARMO_CUDA_GENCODE}" else [tok])
    if any("${" in tok for tok in flags):
        raise StaticCheckError(f"{cmakelists}: ARMO_CUDA_FLAGS uses a variable this script "
                               f"does not expand: {flags}")
    archs = re.findall(r"code=(sm_\w+)", " ".join(gencode))
    if not archs:
        raise StaticCheckError(f"{cmakelists}: no code=sm_XX in ARMO_CUDA_GENCODE {gencode}")
    for arch in archs:
        if arch not in ARCH_LIMITS:
            raise StaticCheckError(f"CMakeLists.txt builds for {arch}, which ARCH_LIMITS in "
                                   "tools/kernel_static.py does not describe: add its limits")
    return flags, archs


def compile_one(nvcc, flags, include_root, cu_path, out_dir):
    """nvcc -c with ptxas -v and kept cubins; returns (ptxas text, {arch: cubin})."""
    stem = os.path.splitext(os.path.basename(cu_path))[0]
    keep_dir = os.path.join(out_dir, stem)
    os.makedirs(keep_dir)
    cmd = [nvcc] + RELEASE_FLAGS + ARMO_CUDA_DEFINES + flags + [
        "-I" + include_root, "-I" + REPO_ROOT, "-Xptxas", "-v", "-keep", "-keep-dir", keep_dir,
        "-c", cu_path, "-o", os.path.join(keep_dir, stem + ".o")]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise StaticCheckError(f"{cu_path}: nvcc failed (exit {proc.returncode}):\n"
                               f"  {' '.join(cmd)}\n{proc.stdout}")
    cubins = {}
    for name in os.listdir(keep_dir):
        m = re.match(re.escape(stem) + r"\.compute_(\w+)\.cubin$", name)
        if m:
            cubins["sm_" + m.group(1)] = os.path.join(keep_dir, name)
    return proc.stdout, cubins


# ------------------------------------------------------------ ptxas report --

def parse_ptxas(text, cu_name):
    """{(mangled, arch): record} from ptxas -v output."""
    kernels = {}
    entry = None      # (mangled, arch) of the entry function being reported
    props_for = None  # the function the next "bytes stack frame" line is about
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '([^']+)' for '(\w+)'", line)
        if m:
            entry = (m.group(1), m.group(2))
            kernels[entry] = dict(file=cu_name, mangled=m.group(1), arch=m.group(2),
                                  regs=None, spill_st=0, spill_ld=0, stack=0, smem=0)
            continue
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            props_for = m.group(1)
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, "
                      r"(\d+) bytes spill loads", line)
        if m and entry and props_for == entry[0]:
            rec = kernels[entry]
            rec["stack"], rec["spill_st"], rec["spill_ld"] = map(int, m.groups())
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and entry:
            rec = kernels[entry]
            rec["regs"] = int(m.group(1))
            sm = re.search(r"(\d+) bytes smem", line)
            rec["smem"] = int(sm.group(1)) if sm else 0
    for (mangled, arch), rec in kernels.items():
        if rec["regs"] is None:
            raise StaticCheckError(f"{cu_name}: ptxas reported no register count for "
                                   f"{mangled} on {arch}; output format changed?")
    return kernels


def demangle(names):
    """{mangled: 'name<args>'} (parameter list dropped); c++filt when present."""
    plain = {n: base_name(n) for n in names}
    cxxfilt = shutil.which("c++filt") or shutil.which("cu++filt")
    if not cxxfilt or not names:
        return plain
    proc = subprocess.run([cxxfilt], input="\n".join(names) + "\n", stdout=subprocess.PIPE,
                          text=True)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != len(names):
        return plain
    out = {}
    for mangled, full in zip(names, lines):
        full = re.sub(r"^void\s+", "", full.strip())
        depth = 0
        for i, ch in enumerate(full):  # cut at the '(' of the parameter list
            depth += ch == "<"
            depth -= ch == ">"
            if ch == "(" and depth == 0:
                full = full[:i]
                break
        out[mangled] = full or plain[mangled]
    return out


def base_name(mangled):
    """Unqualified function name of an Itanium-mangled global function."""
    m = re.match(r"_Z(\d+)", mangled)
    if not m:
        return mangled  # extern "C" kernel: not mangled
    length = int(m.group(1))
    return mangled[m.end():m.end() + length]


# ------------------------------------------------------ threads per block --

def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def read_sources(kernels_dir):
    sources = {}
    for name in sorted(os.listdir(kernels_dir)):
        if name.endswith((".cu", ".cuh", ".h")):
            with open(os.path.join(kernels_dir, name), encoding="utf-8") as f:
                sources[name] = strip_comments(f.read())
    return sources


def collect_defines(sources):
    defines = {}
    for text in sources.values():
        for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+([^\n]+)$", text, re.M):
            defines[m.group(1)] = m.group(2).strip()
    return defines


def eval_int(expr, defines, where, _depth=0):
    """Value of an integer constant expression of literals and #defines."""
    if _depth > 20:
        raise StaticCheckError(f"{where}: #define chain too deep evaluating '{expr}'")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise StaticCheckError(f"{where}: cannot read '{expr}' as an integer expression")

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in defines:
                raise StaticCheckError(f"{where}: '{node.id}' in '{expr}' is not a #define of "
                                       "kernels/; give the kernel a LAUNCH_TABLE 'threads'")
            return eval_int(defines[node.id], defines, where, _depth + 1)
        if isinstance(node, ast.BinOp):
            a, b = walk(node.left), walk(node.right)
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                   ast.Div: lambda: a // b, ast.FloorDiv: lambda: a // b}
            if type(node.op) in ops:
                return ops[type(node.op)]()
        raise StaticCheckError(f"{where}: cannot evaluate '{expr}' statically")

    return walk(tree)


def split_top_level(args):
    parts, depth, cur = [], 0, ""
    for ch in args:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


def launch_bounds(sources):
    """{kernel: (max threads expression, file)} from __launch_bounds__."""
    found = {}
    pat = re.compile(r"__global__\s+(?:void\s+)?__launch_bounds__\s*\(((?:[^()]|\([^()]*\))*)\)"
                     r"\s*(?:void\s+)?(\w+)\s*\(")
    for name, text in sources.items():
        for m in pat.finditer(text):
            found[m.group(2)] = (split_top_level(m.group(1))[0], name)
    return found


def launch_sites(sources):
    """{kernel: [(file, line, block expression)]} from <<<grid, block, ...>>>."""
    sites = {}
    for name, text in sources.items():
        if not name.endswith(".cu"):
            continue
        for m in re.finditer(r"\b(\w+)\s*(?:<[^<>;()]*>)?\s*<<<(.*?)>>>", text, re.S):
            args = split_top_level(m.group(2))
            if len(args) < 2:
                continue
            line = text.count("\n", 0, m.start()) + 1
            sites.setdefault(m.group(1), []).append((name, line, " ".join(args[1].split())))
    return sites


def threads_per_block(kernel, defines, bounds, sites, kernels_dir):
    """(threads, where the number comes from) for one kernel base name; kernels_dir
    only names the folder in messages."""
    if kernel in bounds:
        expr, fname = bounds[kernel]
        return eval_int(expr, defines, f"{fname}: {kernel}"), f"__launch_bounds__({expr})"
    entry = LAUNCH_TABLE.get(kernel)
    if entry is None:
        raise StaticCheckError(
            f"kernel {kernel} (in {kernels_dir}) has no __launch_bounds__ and no entry in "
            "LAUNCH_TABLE of tools/kernel_static.py: add one naming its launcher's block size")
    want = " ".join(entry["block"].split())
    its_sites = [s for s in sites.get(kernel, []) if s[0] == entry["launcher"]]
    if not its_sites:
        raise StaticCheckError(
            f"{kernels_dir}/{entry['launcher']}: no launch of {kernel} found, but LAUNCH_TABLE "
            "in tools/kernel_static.py says it is launched there: update the table")
    for fname, line, block in its_sites:
        if block != want:
            raise StaticCheckError(
                f"{kernels_dir}/{fname}:{line}: {kernel} is launched with block size "
                f"'{block}', LAUNCH_TABLE in tools/kernel_static.py says '{want}': "
                "update the table")
    if "threads" in entry:
        return entry["threads"], f"{entry['launcher']}: {want} ({entry['why']})"
    value = eval_int(want, defines, f"{entry['launcher']}: {kernel}")
    return value, f"{entry['launcher']}: {want}"


# --------------------------------------------------------------- occupancy --

def round_up(x, unit):
    return (x + unit - 1) // unit * unit


def occupancy(regs, smem_static, threads, lim):
    """(blocks per SM, occupancy fraction, limiting factors) as cuda_occupancy.h computes
    them for a launch without dynamic shared memory and the default carveout."""
    warps = -(-threads // WARP_SIZE)
    limits = {}
    limits["warps"] = (lim["max_warps_per_sm"] // warps
                       if threads <= lim["max_threads_per_block"] else 0)
    limits["blocks"] = lim["max_blocks_per_sm"]
    regs_per_warp = round_up(regs * WARP_SIZE, lim["reg_alloc_unit"])
    if regs > lim["max_regs_per_thread"] or \
       regs_per_warp * round_up(warps, lim["sub_partitions"]) > lim["regs_per_block"]:
        limits["registers"] = 0
    elif regs_per_warp:
        warps_per_sub = (lim["regs_per_sm"] // lim["sub_partitions"]) // regs_per_warp
        limits["registers"] = warps_per_sub * lim["sub_partitions"] // warps
    smem_block = round_up(smem_static + lim["smem_reserved_per_block"], lim["smem_alloc_unit"])
    if smem_static > lim["max_static_smem_per_block"]:
        limits["shared memory"] = 0
    else:
        limits["shared memory"] = lim["smem_per_sm"] // smem_block
    blocks = min(limits.values())
    by = [k for k, v in limits.items() if v == blocks]
    return blocks, blocks * warps / lim["max_warps_per_sm"], by


# -------------------------------------------------------------------- SASS --

def find_cuobjdump(nvcc, given):
    if given:
        return given if os.path.isfile(given) and os.access(given, os.X_OK) else None
    beside = os.path.join(os.path.dirname(os.path.realpath(nvcc)), "cuobjdump")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return shutil.which("cuobjdump")


def hmma_by_elf(cubin):
    """{mangled: HMMA count} from the cubin's .text.<kernel> sections."""
    with open(cubin, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise StaticCheckError(f"{cubin}: not a 64-bit ELF cubin")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = []
    for i in range(shnum):
        sh = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        sections.append(dict(name=sh[0], type=sh[1], offset=sh[4], size=sh[5]))
    strtab = sections[shstrndx]
    counts = {}
    for sec in sections:
        start = strtab["offset"] + sec["name"]
        name = data[start:data.index(b"\0", start)].decode()
        if not name.startswith(".text."):
            continue
        body = data[sec["offset"]:sec["offset"] + sec["size"]]
        counts[name[len(".text."):]] = sum(
            1 for off in range(0, len(body) - 15, 16)
            if struct.unpack_from("<Q", body, off)[0] & 0xFFF == HMMA_OPCODE)
    return counts


def hmma_by_cuobjdump(cuobjdump, cubin):
    proc = subprocess.run([cuobjdump, "-sass", cubin], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise StaticCheckError(f"{cubin}: cuobjdump -sass failed:\n{proc.stdout}")
    counts, func = {}, None
    for line in proc.stdout.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            func = m.group(1)
            counts[func] = 0
        elif func and re.search(r"\bHMMA\b", line):
            counts[func] += 1
    return counts


# -------------------------------------------------------------------- main --

def gather(args):
    nvcc = args.nvcc or shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    if not (os.path.isfile(nvcc) and os.access(nvcc, os.X_OK)):
        return None
    kernels_dir = os.path.abspath(args.kernels_dir)
    # the .cu files include "kernels/...": the copy's parent first, then the
    # repository for everything else (base/errors.h)
    include_root = os.path.dirname(kernels_dir)
    flags, archs = cmake_cuda_flags(os.path.join(REPO_ROOT, "CMakeLists.txt"))
    shown_dir = os.path.relpath(kernels_dir, REPO_ROOT)  # how messages name the files
    if shown_dir.startswith(".."):
        shown_dir = kernels_dir
    cu_files = sorted(f for f in os.listdir(kernels_dir) if f.endswith(".cu"))
    if not cu_files:
        raise StaticCheckError(f"{kernels_dir}: no .cu files")
    sources = read_sources(kernels_dir)
    defines = collect_defines(sources)
    bounds, sites = launch_bounds(sources), launch_sites(sources)
    cuobjdump = find_cuobjdump(nvcc, args.cuobjdump)
    if args.cuobjdump and not cuobjdump:
        raise StaticCheckError(f"--cuobjdump {args.cuobjdump}: not an executable")

    rows = []
    with tempfile.TemporaryDirectory(prefix="kernel_static.") as tmp, \
            concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        jobs = {cu: pool.submit(compile_one, nvcc, flags, include_root,
                                os.path.join(kernels_dir, cu), tmp) for cu in cu_files}
        for cu in cu_files:
            report, cubins = jobs[cu].result()
            kernels = parse_ptxas(report, os.path.join(shown_dir, cu))
            if not kernels:
                continue  # host-only file (gemm.cu: cuBLASLt)
            names = demangle(sorted({k[0] for k in kernels}))
            hmma = {}
            for arch in archs:
                if arch not in cubins:
                    raise StaticCheckError(f"{shown_dir}/{cu}: nvcc -keep left no cubin for "
                                           f"{arch} (found {sorted(cubins)})")
                hmma[arch] = hmma_by_elf(cubins[arch])
                if cuobjdump:
                    text_counts = hmma_by_cuobjdump(cuobjdump, cubins[arch])
                    if text_counts != hmma[arch]:
                        raise StaticCheckError(
                            f"{shown_dir}/{cu} {arch}: HMMA counts of cuobjdump {text_counts} "
                            f"and of the cubin opcode scan {hmma[arch]} differ: HMMA_OPCODE "
                            "is stale")
            for (mangled, arch), rec in kernels.items():
                if arch not in archs:
                    continue
                kernel = base_name(mangled)
                threads, origin = threads_per_block(kernel, defines, bounds, sites, shown_dir)
                blocks, occ, by = occupancy(rec["regs"], rec["smem"], threads, ARCH_LIMITS[arch])
                rec.update(kernel=kernel, name=names[mangled], file=cu, path=rec["file"],
                           threads=threads, origin=origin,
                           blocks=blocks, occ=occ, limited_by=by,
                           hmma=hmma[arch].get(mangled, 0))
                rows.append(rec)
    for kernel in LAUNCH_TABLE:
        if kernel not in {r["kernel"] for r in rows}:
            print(f"warning: LAUNCH_TABLE names {kernel}, which no kernels/*.cu compiles",
                  file=sys.stderr)
    sass_tool = "cuobjdump -sass (and cubin opcode scan, agreeing)" if cuobjdump \
        else "cubin opcode scan (no cuobjdump found)"
    rows.sort(key=lambda r: (r["file"], r["kernel"], [int(t) if t.isdigit() else t for t in
                                                      re.split(r"(\d+)", r["name"])],
                             archs.index(r["arch"])))
    return dict(rows=rows, archs=archs, nvcc=nvcc, flags=flags, sass_tool=sass_tool)


# Spills allowed on a kernel that is not on a hot path, each with its bound
# and its reason: (demangled name, arch) -> (max spill store bytes, max spill
# load bytes, why).  Anything more, or a spill anywhere else, fails --check.
ALLOWED_SPILLS = {
    ("flash_attn_kernel<32>", "sm_80"): (
        4, 8, "one 4-byte value stored before the key-tile loop and loaded twice after it "
        "(SASS: one STL, two LDL, none inside the loop); head_dim 32 serves only the tiny "
        "test models, and __launch_bounds__(128, 1), which removes it, costs hd 128 a "
        "block per SM"),
}


def allowed_spill(r):
    allow = ALLOWED_SPILLS.get((r["name"], r["arch"]))
    return allow is not None and r["spill_st"] <= allow[0] and r["spill_ld"] <= allow[1]


def problems_of(result):
    probs = []
    for r in result["rows"]:
        where = f"{r['path']}: {r['name']} on {r['arch']}"
        if (r["spill_st"] or r["spill_ld"]) and not allowed_spill(r):
            probs.append(f"{where} spills: {r['spill_st']} bytes spill stores, "
                         f"{r['spill_ld']} bytes spill loads ({r['regs']} registers)")
        if r["smem"] > ARCH_LIMITS[r["arch"]]["max_static_smem_per_block"]:
            probs.append(f"{where} uses {r['smem']} bytes of static shared memory, over the "
                         f"{ARCH_LIMITS[r['arch']]['max_static_smem_per_block']}-byte limit")
        if r["blocks"] == 0:
            probs.append(f"{where} cannot launch with {r['threads']} threads: no block fits "
                         f"on an SM (limited by {', '.join(r['limited_by'])})")
        if r["kernel"] in TENSOR_CORE_KERNELS and r["hmma"] == 0:
            probs.append(f"{where} has no HMMA instruction in its SASS: the tensor-core "
                         "path is gone")
    for kernel in TENSOR_CORE_KERNELS:
        for arch in result["archs"]:
            if not any(r["kernel"] == kernel and r["arch"] == arch for r in result["rows"]):
                probs.append(f"no {kernel} instantiation was compiled for {arch}")
    return probs


COLUMNS = ["kernel", "file", "arch", "threads", "regs", "spill st/ld B", "stack B",
           "static smem B", "blocks/SM", "occupancy", "limited by", "HMMA"]


def table_rows(result):
    for r in result["rows"]:
        yield [r["name"], r["file"], r["arch"], str(r["threads"]), str(r["regs"]),
               f"{r['spill_st']}/{r['spill_ld']}", str(r["stack"]), str(r["smem"]),
               str(r["blocks"]), f"{100 * r['occ']:.1f}%", ", ".join(r["limited_by"]),
               str(r["hmma"])]


def print_text(result):
    body = list(table_rows(result))
    widths = [max(len(c), *(len(row[i]) for row in body)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)))
    for row in body:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    origins = {}
    for r in result["rows"]:
        origins.setdefault(r["kernel"], r["origin"])
    print("\nthreads per block from:")
    for kernel, origin in origins.items():
        print(f"  {kernel}: {origin}")
    print(f"HMMA counted by: {result['sass_tool']}")


def print_markdown(result):
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" if i < 3 or i == 10 else "---:"
                         for i in range(len(COLUMNS))) + "|")
    for row in table_rows(result):
        row[0] = "`" + row[0] + "`"
        print("| " + " | ".join(row) + " |")
    print()
    origins = {}
    for r in result["rows"]:
        origins.setdefault(r["kernel"], r["origin"])
    print("Threads per block: " + "; ".join(f"`{k}` {v}" for k, v in origins.items()) + ".")
    print(f"HMMA counted by {result['sass_tool']}. Occupancy: resident warps / 64, "
          "no dynamic shared memory, default carveout (sm_80: 164 KB, sm_90a: 228 KB of "
          "shared memory per SM, 1 KB reserved per block).")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="exit 1 on a spill, an attention kernel (flash, pipelined) without "
                           "HMMA, static "
                           "shared memory over 48 KB, or a kernel that cannot launch")
    mode.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--nvcc", help="nvcc to use (default: PATH, then /usr/local/cuda/bin/nvcc)")
    ap.add_argument("--cuobjdump", help="cuobjdump to cross-check the HMMA counts with "
                                        "(default: beside nvcc, then PATH; optional)")
    ap.add_argument("--kernels-dir", default=os.path.join(REPO_ROOT, "kernels"),
                    help="folder of the .cu/.cuh files, e.g. a modified copy; its parent is "
                         "searched for includes before the repository (default: kernels/)")
    ap.add_argument("--jobs", type=int, default=2, choices=(1, 2),
                    help="parallel nvcc runs (default 2)")
    args = ap.parse_args()

    started = time.monotonic()
    try:
        result = gather(args)
    except StaticCheckError as err:
        print(f"kernel_static: error: {err}", file=sys.stderr)
        return 2
    if result is None:
        print("nvcc not found: skipped")
        return SKIP_EXIT
    if args.markdown:
        print_markdown(result)
        return 0
    print_text(result)
    print(f"({len(result['rows'])} kernel/arch pairs, {time.monotonic() - started:.1f} s, "
          f"{result['nvcc']})")
    if not args.check:
        return 0
    probs = problems_of(result)
    if probs:
        print("\nkernel_static --check FAILED:")
        for p in probs:
            print("  " + p)
        return 1
    for r in result["rows"]:
        if (r["spill_st"] or r["spill_ld"]) and allowed_spill(r):
            print(f"allowed spill: {r['name']} on {r['arch']} ({r['spill_st']}/{r['spill_ld']} "
                  f"bytes): {ALLOWED_SPILLS[(r['name'], r['arch'])][2]}")
    print("kernel_static --check: OK (no spill but the allowed ones, HMMA in every "
          f"{' and '.join(TENSOR_CORE_KERNELS)} on "
          f"{' and '.join(result['archs'])}, static smem <= 48 KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
