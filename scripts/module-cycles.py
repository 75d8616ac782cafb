#!/usr/bin/env python3
"""Lists pairs of modules of one crate that import each other.

For every `src/` tree in the workspace, each file is a module
(`a/b.rs` and `a/b/mod.rs` are `a::b`). A module imports another when it
names a path under it (`crate::x::y`, `super::y`, `self::y` inside mod.rs).
A parent and its own submodules may refer to each other (a `mod.rs`
declares and re-exports its children); any other pair that refers both ways
is printed. Exits 1 if there is one.

    python3 scripts/module-cycles.py
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\}", re.S)


def modules(src):
    out = {}
    for base, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(base, name), src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            out[tuple(rel)] = os.path.join(base, name)
    return out


def resolve(mods, current, is_dir_module, root, rest):
    if root == "crate":
        parts = []
    elif root == "self":
        parts = list(current)
    else:  # super
        parts = list(current)[:-1]
    for seg in rest:
        if seg == "super":
            parts = parts[:-1]
        else:
            parts.append(seg)
    while parts and tuple(parts) not in mods:
        parts.pop()
    return tuple(parts)


def imports(mods, module, path):
    text = open(path).read()
    text = re.sub(r"//[^\n]*", "", text)
    text = text.split("#[cfg(test)]")[0]
    found = set()
    candidates = [(m.group(1), m.group(2).split("::")[1:]) for m in PATH.finditer(text)]
    for m in USE_GROUP.finditer(text):
        prefix = m.group(2).split("::")[1:] if m.group(2) else []
        for item in m.group(3).split(","):
            item = item.strip().split("::")[0].split(" ")[0]
            if item and item not in ("self", "{"):
                candidates.append((m.group(1), prefix + [item]))
    for root, rest in candidates:
        target = resolve(mods, module, path.endswith("mod.rs"), root, rest)
        if target != module:
            found.add(target)
    return found


def main():
    bad = 0
    for base, dirs, _ in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in ("target", ".git", "fuzz") and not d.startswith(".venv")]
        if os.path.basename(base) != "src" or not (
            os.path.exists(os.path.join(base, "lib.rs")) or os.path.exists(os.path.join(base, "main.rs"))
        ):
            continue
        mods = modules(base)
        graph = {m: imports(mods, m, p) for m, p in mods.items()}
        for a, targets in graph.items():
            for b in targets:
                related = a[: len(b)] == b or b[: len(a)] == a
                if a < b and not related and a in graph.get(b, ()):
                    print(f"{os.path.relpath(base, ROOT)}: {'::'.join(a) or 'crate'} <-> {'::'.join(b) or 'crate'}")
                    bad += 1
    print(f"{bad} pair(s) of modules import each other")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
