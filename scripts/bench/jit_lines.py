#!/usr/bin/env python3
"""Where a loaded BPF program's `perf` samples fall, by source line.

    perf record -a -e cpu-clock -F 2000 -- sleep 8      # while it runs
    perf script -F ip,sym | grep accel_xdp | awk '{print $1}' \\
        | sort | uniq -c | sort -rn | head -20 \\
        | scripts/bench/jit_lines.py PROG_ID             # root

`perf annotate` and `bpftool prog dump jited` need a disassembler this
machine's builds lack; the kernel still gives every program's JIT line
table (BPF_OBJ_GET_INFO_BY_FD: jited_line_info, line_info). Each input
line is "COUNT ADDRESS" (hex, as perf script prints it); each output line
is the count, the address, the BPF instruction the JIT emitted it for,
and the source line `bpftool prog dump xlated id PROG_ID linum` gives
that instruction. A sample usually lands just after the instruction that
stalled (a load that missed the cache is the line before).
"""
import bisect
import ctypes
import os
import re
import struct
import subprocess
import sys

SYS_BPF = 321  # x86_64
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
INFO_SIZE = 256
# struct bpf_prog_info (include/uapi/linux/bpf.h), the fields read here.
OFF_NR_FUNC_INFO = 144  # nr_func_info, nr_line_info
OFF_LINE_INFO = 152  # line_info, jited_line_info (pointers)
OFF_NR_JITED_LINE_INFO = 168  # nr_jited_line_info, line_info_rec_size, jited_line_info_rec_size

libc = ctypes.CDLL(None, use_errno=True)


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    r = libc.syscall(SYS_BPF, cmd, buf, 128)
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return r


def prog_info(fd, fill=b""):
    info = ctypes.create_string_buffer(fill, INFO_SIZE)
    bpf(BPF_OBJ_GET_INFO_BY_FD, struct.pack("IIQ", fd, INFO_SIZE, ctypes.addressof(info)))
    return info.raw


def line_table(prog_id):
    """(JIT address, BPF instruction offset) pairs, sorted by address."""
    fd = bpf(BPF_PROG_GET_FD_BY_ID, struct.pack("I", prog_id))
    raw = prog_info(fd)
    _, nr_lines = struct.unpack_from("II", raw, OFF_NR_FUNC_INFO)
    nr_jited, li_size, jli_size = struct.unpack_from("III", raw, OFF_NR_JITED_LINE_INFO)
    if not nr_lines or nr_lines != nr_jited:
        sys.exit(f"program {prog_id} has no JIT line table (no BTF, or not JITed)")
    li = ctypes.create_string_buffer(nr_lines * li_size)
    jli = ctypes.create_string_buffer(nr_jited * jli_size)
    fill = bytearray(INFO_SIZE)
    struct.pack_into("II", fill, OFF_NR_FUNC_INFO, 0, nr_lines)
    struct.pack_into("QQ", fill, OFF_LINE_INFO, ctypes.addressof(li), ctypes.addressof(jli))
    struct.pack_into("III", fill, OFF_NR_JITED_LINE_INFO, nr_jited, li_size, jli_size)
    prog_info(fd, bytes(fill))
    insns = [struct.unpack_from("I", li.raw, i * li_size)[0] for i in range(nr_lines)]
    addrs = [struct.unpack_from("Q", jli.raw, i * jli_size)[0] for i in range(nr_jited)]
    return sorted(zip(addrs, insns))


def source_lines(prog_id):
    """BPF instruction offset -> the source comment bpftool prints before it."""
    out = subprocess.run(["bpftool", "prog", "dump", "xlated", "id", str(prog_id), "linum"],
                         capture_output=True, text=True, check=True).stdout
    src, last = {}, ""
    for line in out.splitlines():
        if line.startswith(";"):
            m = re.match(r";\s*(.*?)\s*\[file:(\S+) line_num:(\d+)", line)
            last = f"{m.group(2).rsplit('/', 1)[-1]}:{m.group(3)}  {m.group(1)}" if m else line
            continue
        m = re.match(r"\s*(\d+):", line)
        if m:
            src[int(m.group(1))] = last
    return src


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    prog_id = int(sys.argv[1])
    table = line_table(prog_id)
    addrs = [a for a, _ in table]
    src = source_lines(prog_id)
    for line in sys.stdin:
        fields = line.split()
        if len(fields) != 2:
            continue
        count, addr = fields[0], int(fields[1], 16)
        i = bisect.bisect_right(addrs, addr) - 1
        if i < 0:
            print(f"{count:>7} {addr:#x}  before the program")
            continue
        insn = table[i][1]
        print(f"{count:>7} {addr:#x}  insn {insn:5}  {src.get(insn, '?')}")


if __name__ == "__main__":
    main()
