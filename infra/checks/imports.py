#!/usr/bin/env python3
"""No module imports one that imports it back: the crate's `use` graph, file
by file, must have no cycle. A `use` (or an inline `crate::…` / `super::…`
path) is an edge to the module file it names; `mod x;` declarations are not
edges (a parent owns its children), and a child's `#[cfg(test)] mod tests`
may use its parent. Prints the cycles and exits 1 if there is one."""
import os, re, sys

REPO = os.path.join(os.path.dirname(__file__), '..', '..')
# The two libraries: the core (rules and operations) and the crate around it.
ROOTS = [os.path.join(REPO, 'core', 'src'), os.path.join(REPO, 'src')]

def modules(root):
    """Module path (tuple) -> file, for one library (src/bin are separate crates)."""
    found = {}
    for dirpath, _, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel.split(os.sep)[0] == 'bin':
            continue
        parts = () if rel == '.' else tuple(rel.split(os.sep))
        for f in files:
            if not f.endswith('.rs'):
                continue
            if f in ('lib.rs', 'mod.rs'):
                found[parts] = os.path.join(dirpath, f)
            else:
                found[parts + (f[:-3],)] = os.path.join(dirpath, f)
    return found

def strip_comments(text):
    # A file's own test module may use whatever it tests.
    text = re.split(r'#\[cfg\(test\)\]\s*mod tests \{', text)[0]
    text = re.sub(r'//[^\n]*', '', text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)

def use_paths(text):
    """Every path a file names: `use` trees expanded, and inline paths."""
    paths = []
    for tree in re.findall(r'\buse\s+([^;]+);', text):
        paths += expand(re.sub(r'\s+as\s+\w+', '', tree).replace('\n', ' ').replace(' ', ''))
    text = re.sub(r'\buse\s+[^;]+;', '', text)
    paths += re.findall(r'\b((?:crate|super|self)(?:::\w+)+)', text)
    return paths

def expand(tree):
    m = re.match(r'^(.*?)::\{(.*)\}$', tree)
    if not m:
        return [tree]
    prefix, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ''
    for ch in inner:
        if ch == ',' and depth == 0:
            items.append(cur); cur = ''
            continue
        depth += ch == '{'
        depth -= ch == '}'
        cur += ch
    items.append(cur)
    out = []
    for item in filter(None, items):
        out += [prefix if item == 'self' else p for p in expand(prefix + '::' + item)]
    return out

def resolve(path, here, mods):
    """The module file a path names: its longest prefix that is a module."""
    parts = path.split('::')
    if parts[0] == 'crate':
        base, rest = (), parts[1:]
    elif parts[0] in ('super', 'self'):
        base = here
        while parts and parts[0] in ('super', 'self'):
            if parts[0] == 'super':
                base = base[:-1]
            parts = parts[1:]
        rest = parts
    elif here + (parts[0],) in mods:
        # A path relative to this module: one of its children.
        base, rest = here, parts
    else:
        return None
    best = base if base in mods else None
    for i in range(1, len(rest) + 1):
        if base + tuple(rest[:i]) in mods:
            best = base + tuple(rest[:i])
    return best

def main():
    return max(check(root) for root in ROOTS)

def check(root):
    mods = modules(root)
    edges = {m: set() for m in mods}
    for m, path in mods.items():
        for p in use_paths(strip_comments(open(path).read())):
            target = resolve(p, m, mods)
            if target is None or target == m:
                continue
            # A test module may use what it tests.
            if m[-1:] == ('tests',) and target == m[:-1]:
                continue
            edges[m].add(target)
    cycles, state, stack = [], {}, []
    def visit(m):
        state[m] = 1; stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop(); state[m] = 2
    for m in sorted(mods):
        if m not in state:
            visit(m)
    name = lambda m: 'crate' + ''.join('::' + p for p in m)
    for cycle in cycles:
        print('import cycle: ' + ' → '.join(name(m) for m in cycle))
    crate = os.path.relpath(root, REPO)
    print(f'{crate}: {len(mods)} modules, {sum(map(len, edges.values()))} imports, {len(cycles)} cycles')
    return 1 if cycles else 0

if __name__ == '__main__':
    sys.exit(main())
