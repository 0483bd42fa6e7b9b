#!/usr/bin/python3
"""Compiles the local sandbox's seccomp policy (JSON on stdin, see seccomp.ts)
into the BPF program `bwrap --seccomp FD` loads, written to stdout.

Uses libseccomp's Python binding (Debian/Ubuntu: python3-seccomp), which knows
each architecture's system call numbers. The filter allows by default, so a
name this libseccomp does not know is skipped (listed on stderr), never fatal.
System calls of another ABI than the native one (i386 via int 0x80, x32) hit
libseccomp's default bad-architecture action: the process is killed.
"""
import errno
import json
import sys

try:
    import seccomp
except ImportError:
    sys.stderr.write("python3's seccomp module is missing\n")
    sys.exit(3)

policy = json.load(sys.stdin)
rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
skipped = []


def add(action, name, *args):
    try:
        rules.add_rule(action, name, *args)
    except (RuntimeError, ValueError, OSError):
        skipped.append(name)  # unknown to this libseccomp or this architecture


for name in policy["eperm"]:
    add(seccomp.ERRNO(errno.EPERM), name)
for name in policy["enosys"]:
    add(seccomp.ERRNO(errno.ENOSYS), name)
for flag in policy["cloneFlags"]:  # clone(flags, ...): flags is argument 0 on x86_64 and aarch64
    add(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
for request in policy["ioctls"]:
    add(seccomp.ERRNO(errno.EPERM), "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, request))

rules.export_bpf(sys.stdout.buffer)
if skipped:
    sys.stderr.write("not known here: %s\n" % " ".join(skipped))
