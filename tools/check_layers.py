#!/usr/bin/env python3
"""Checks that every #include in src/ goes down the layers that src/layers.txt allows.

Usage: check_layers.py [--src DIR] [--table FILE] [--stamp FILE]

A quoted include ("quant/numerics.h", or a path relative to the including file) names the
module of the first folder under src/; a module may include its own headers and those of every
module reachable through the table's edges. An angle include whose path starts with an `extern`
prefix may appear only in the modules listed for it. Also fails when the table has a cycle or
names an unknown module, or when a folder or source file under src/ belongs to no module.
Prints one line per violation (file:line: what and what is allowed) to stderr and exits 1;
on success touches --stamp (the build's record that the check ran) and exits 0.
"""
import argparse
import os
import re
import sys

SOURCE_EXTS = (".h", ".hpp", ".cpp", ".cc", ".inl")
QUOTED = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
ANGLED = re.compile(r"^\s*#\s*include\s*<([^>]+)>")


def read_table(path):
    """Returns ({module: [direct deps]} in file order, [(prefix, [modules])]), or exits."""
    deps, externs, errors = {}, [], []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            head, sep, tail = line.partition(":")
            if not sep:
                errors.append(f"{path}:{n}: expected 'module: deps' or 'extern prefix: modules'")
                continue
            words = head.split()
            if len(words) == 2 and words[0] == "extern":
                externs.append((words[1], tail.split()))
            elif len(words) == 1:
                if words[0] in deps:
                    errors.append(f"{path}:{n}: module '{words[0]}' listed twice")
                deps[words[0]] = tail.split()
            else:
                errors.append(f"{path}:{n}: cannot read '{line}'")
    for m, ds in deps.items():
        for d in ds:
            if d not in deps:
                errors.append(f"{path}: '{m}' builds on unknown module '{d}'")
    for prefix, ms in externs:
        for m in ms:
            if m not in deps:
                errors.append(f"{path}: extern '{prefix}' names unknown module '{m}'")
    if errors:
        sys.exit("\n".join(errors))
    return deps, externs


def reachable(deps):
    """{module: set of modules below it}; exits naming a cycle if the edges have one."""
    below, state = {}, {}

    def visit(m, stack):
        if state.get(m) == "done":
            return below[m]
        if state.get(m) == "active":
            cycle = stack[stack.index(m):] + [m]
            sys.exit("layers table has a cycle: " + " -> ".join(cycle))
        state[m] = "active"
        acc = set()
        for d in deps[m]:
            acc.add(d)
            acc |= visit(d, stack + [d])
        state[m] = "done"
        below[m] = acc
        return acc

    for m in deps:
        visit(m, [m])
    return below


def module_of(src, path):
    rel = os.path.relpath(path, src)
    return rel.split(os.sep, 1)[0] if os.sep in rel else None


def check(src, table):
    deps, externs = read_table(table)
    below = reachable(deps)
    errors = []
    for entry in sorted(os.listdir(src)):
        full = os.path.join(src, entry)
        if os.path.isdir(full) and entry not in deps:
            errors.append(f"{full}: folder is no module of {table}")
        elif os.path.isfile(full) and entry.endswith(SOURCE_EXTS):
            errors.append(f"{full}: source file outside every module folder")
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(SOURCE_EXTS):
                continue
            path = os.path.join(root, name)
            mod = module_of(src, path)
            if mod not in deps:
                continue  # reported above as a folder outside the table
            allowed = below[mod] | {mod}
            with open(path, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    errors += check_line(src, path, n, line, mod, allowed, externs)
    return errors


def check_line(src, path, n, line, mod, allowed, externs):
    m = QUOTED.match(line)
    if m:
        inc = m.group(1)
        # As the compiler looks: next to the including file first, then from the include root.
        local = os.path.normpath(os.path.join(os.path.dirname(path), inc))
        target = local if os.path.exists(local) else os.path.normpath(os.path.join(src, inc))
        rel = os.path.relpath(target, src)
        if rel.startswith(".."):
            return [f"{path}:{n}: includes \"{inc}\" from outside src/"]
        to = rel.split(os.sep, 1)[0] if os.sep in rel else None
        if to is None:
            return [f"{path}:{n}: includes \"{inc}\", which is in no module"]
        if to not in allowed:
            may = " ".join(sorted(allowed - {mod})) or "nothing"
            return [f"{path}:{n}: {mod} may not include \"{inc}\" ({to} is not below {mod}; "
                    f"{mod} builds on: {may})"]
        return []
    m = ANGLED.match(line)
    if m:
        inc = m.group(1)
        for prefix, owners in externs:
            if inc.startswith(prefix) and mod not in owners:
                return [f"{path}:{n}: <{inc}> belongs to {' '.join(owners)}, not {mod}"]
    return []


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=os.path.join(repo, "src"))
    ap.add_argument("--table", default=None, help="default: SRC/layers.txt")
    ap.add_argument("--stamp", default=None)
    args = ap.parse_args()
    table = args.table or os.path.join(args.src, "layers.txt")
    errors = check(args.src, table)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        print(f"check_layers: {len(errors)} include(s) against {table}", file=sys.stderr)
        return 1
    if args.stamp:
        with open(args.stamp, "w", encoding="utf-8") as f:
            f.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
