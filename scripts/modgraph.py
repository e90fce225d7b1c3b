#!/usr/bin/env python3
"""Prints who imports whom among the crate's top-level modules (a file
`src/x.rs` or a folder `src/x/`), from the `crate::` paths of each file
outside its test modules, and exits 1 if two modules import each other,
directly or through others (a cycle).

    python3 scripts/modgraph.py
"""
import glob, os, re, sys

root = os.path.join(os.path.dirname(__file__), '..', 'src')
# Names the crate root re-exports, by the module they come from
# (`pub use x::{A, B};` in lib.rs).
reexport = {}
lib = open(os.path.join(root, 'lib.rs')).read()
for mod, names in re.findall(r'pub use ([a-z_]+)::\{?([^;]*?)\}?;', lib, re.S):
    for n in re.findall(r'[A-Za-z_][A-Za-z0-9_]*', names):
        reexport[n] = mod
def is_mod(d):
    return os.path.exists(os.path.join(root, d + '.rs')) or os.path.isdir(os.path.join(root, d))
mods = {}
for p in glob.glob(os.path.join(root, '**', '*.rs'), recursive=True):
    rel = os.path.relpath(p, root)
    if rel == 'lib.rs':
        continue
    top = rel.split(os.sep)[0].removesuffix('.rs')
    text = open(p).read()
    # Test modules sit at the end of a file: cut from the first one.
    m = re.search(r'^#\[cfg\((all\()?test', text, re.M)
    if m:
        text = text[:m.start()]
    text = '\n'.join(l for l in text.split('\n') if not l.lstrip().startswith('//'))
    # Imports for the docs' links only.
    text = re.sub(r'#\[cfg\(doc\)\][^\n]*\n[^\n]*\n', '', text)
    deps = mods.setdefault(top, set())
    found = re.findall(r'crate::([A-Za-z_][A-Za-z0-9_]*)', text)
    # `use crate::{a::b, C}` groups
    for group in re.findall(r'use crate::\{([^}]*)\}', text, re.S):
        found += re.findall(r'(?:^|[\s,{])([A-Za-z_][A-Za-z0-9_]*)', ' ' + group)
    for d in found:
        d = reexport.get(d, d)
        if is_mod(d) and d != top:
            deps.add(d)
for m in sorted(mods):
    print(f"{m} -> {', '.join(sorted(mods[m])) or '(none)'}")
# cycles: depth-first search
state, cycle = {}, []
def visit(n, path):
    state[n] = 1
    for d in sorted(mods.get(n, ())):
        if state.get(d) == 1:
            cycle.append(path[path.index(d):] + [d] if d in path else path + [d])
        elif d not in state:
            visit(d, path + [d])
    state[n] = 2
for n in sorted(mods):
    if n not in state:
        visit(n, [n])
if cycle:
    print('cycles:', '; '.join(' -> '.join(c) for c in cycle))
    sys.exit(1)
print('no cycle')
