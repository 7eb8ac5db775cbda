#!/usr/bin/env python3
"""Check that no crate has a dependency cycle between its own source files.

Usage: check_mod_cycles.py [--verbose] [CRATE_DIR ...]. Without CRATE_DIR: every
dir of the repo (not target/) with src/ and a Cargo.toml that has [package].
--verbose prints every edge. Exit status 1 if any crate has a cycle, else 0.

A cycle: within one crate, take the directed graph over its `.rs` files where
A -> B if file A *uses an item defined in* file B, and report each strongly
connected component of more than one file. Each `use crate::|super::|self::..`
import (grouped `{a, b::c}`, nested groups; also `use child::..`), each path in
code (`crate::x::Item`, `super::Item`, `$crate::Item`, `fast::f` once `fast` is
an imported module) and each `name!` call of a crate macro resolves to the file
that DEFINES its last segment (a `struct|enum|trait|fn|type|const|static|union|
macro_rules!|mod` of any visibility; `Enum::Variant` stops at the enum).
  * Re-exports are followed to the defining file (`pub use child::Item;`,
    `pub use child::*;`), so a mod.rs/lib.rs that only declares and re-exports
    its children does not make them appear to depend on it. A name re-exported
    from another crate counts as defined by the file re-exporting it.
  * A private `use` always makes an edge; a `pub use` only for names its file
    also uses (as a word outside `use`/`mod` lines, not after `::` or `.`).
  * A glob `use path::*;` makes edges for the names reachable through `path`
    that occur as such words in the importing file (or block, inside a fn).
  * `mod foo;` is no edge, nor is a file to itself. `#[cfg(test)] mod` blocks,
    comments (doc comments too) and string literals are blanked first.
Roots: src/lib.rs and src/main.rs. Each root's `mod` tree resolves on
its own (`crate::` in the binary's files means src/main.rs's tree); all files
share the crate's graph. Visibility is not checked.
"""
import os
import re
import sys
from itertools import accumulate

VIS = r'(?:pub(?:\([^)]*\))?\s+)'
ITEM_RE = re.compile(r'(?m)^[ \t]*' + VIS + r'?(?:(?:unsafe|async|const|extern(?:\s+"[^"]*")?)\s+)*'
                     r'(?:(?:struct|enum|trait|fn|type|const|static|union)\s+(?:mut\s+)?(?!_\b)(\w+)|macro_rules!\s*(\w+))')
MOD_RE = re.compile(r'(?m)^[ \t]*' + VIS + r'?mod\s+(\w+)\s*([;{])')
USE_RE = re.compile(r'(?m)^[ \t]*(' + VIS + r')?use\s+([^;]+);')
TEST_RE = re.compile(r'#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*' + VIS + r'?mod\s+\w+\s*[;{]')
PATH_RE = re.compile(r'(?<![\w:$])(\$?[a-z_]\w*)((?:::[A-Za-z_]\w*)+)')
MACRO_CALL_RE = re.compile(r'(?<![\w:$])([A-Za-z_]\w*)!(?!=)')
LEX_RE = re.compile(r'//[^\n]*|/\*.*?\*/|(?<!\w)b?r(#*)".*?"\1|(?<!\w)b?"(?:\\.|[^"\\])*"'
                    r"|'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'\n])'", re.S)
WORD_RE = re.compile(r'(?<![\w.])(?<!::)[A-Za-z_]\w*')
KEYWORD_ROOTS = ('crate', '$crate', 'self', 'super')


def spaces(s):
    return re.sub(r'[^\n]', ' ', s)


def match_brace(text, i):
    """Index just past the `}` matching the `{` at text[i]."""
    depth = 0
    for j in range(i, len(text)):
        depth += {'{': 1, '}': -1}.get(text[j], 0)
        if depth == 0:
            return j + 1
    return len(text)


def strip(src):
    """Blank comments, string and char literals, and #[cfg(test)] mods; offsets are kept."""
    text = LEX_RE.sub(lambda m: spaces(m.group()), src)
    while (m := TEST_RE.search(text)):
        end = match_brace(text, m.end() - 1) if m.group().endswith('{') else m.end()
        text = text[:m.start()] + spaces(text[m.start():end]) + text[end:]
    return text


def split_top(s):
    """Split on the commas that are not inside braces."""
    parts, depth = [''], 0
    for c in s:
        depth += {'{': 1, '}': -1}.get(c, 0)
        if c == ',' and depth == 0:
            parts.append('')
        else:
            parts[-1] += c
    return [p.strip() for p in parts if p.strip()]


def parse_use_tree(s, prefix=()):
    """`crate::a::{b, c::{d as e, self}, *}` -> [(['crate','a','b'], 'b'), ..., (['crate','a'], '*')]."""
    s = re.sub(r'\s+', ' ', s).strip()                 # (`use ::x::y` gets a '' root: never resolves)
    if (m := re.fullmatch(r'((?:[\w$]+ ?:: ?)*)\{(.*)\}', s)):
        base = tuple(prefix) + tuple(x.strip() for x in m.group(1).split('::') if x.strip())
        return [u for part in split_top(m.group(2)) for u in parse_use_tree(part, base)]
    path, _, alias = s.partition(' as ')
    path = list(prefix) + [x.strip() for x in path.split('::')]
    if path[-1] == '*':
        return [(path[:-1], '*')]
    if path[-1] == 'self' and len(path) > 1:
        path = path[:-1]
    alias = alias.strip() or path[-1]
    return [] if alias in KEYWORD_ROOTS else [(path, alias)]


class Mod:
    """One module: a file, or an inline `mod x { .. }` (span = its body, depth = brace depth of that body)."""
    def __init__(self, file, parent, depth, span, childdir):
        self.file, self.parent, self.depth, self.span, self.childdir = file, parent, depth, span, childdir
        self.root = self if parent is None else parent.root
        self.children, self.items, self.uses, self.pub_uses, self.globs = {}, {}, {}, set(), []


class Crate:
    def __init__(self, cdir):
        self.texts, self.depths, self.macros, self.mods = {}, {}, {}, []
        for path in filter(os.path.isfile, (os.path.join(cdir, 'src', root) for root in ('lib.rs', 'main.rs'))):
            root = self.load(path, None)
            for f in {m.file for m in self.mods if m.root is root}:
                for name in self.macros[f]:              # #[macro_export] puts a macro at the root
                    root.items.setdefault(name, f)

    def load(self, path, parent):
        if path not in self.texts:
            with open(path, encoding='utf-8') as fh:
                self.texts[path] = text = strip(fh.read())
            # brace depth of each char; a `{` or `}` has the depth outside it
            self.depths[path] = [d - (c == '{') for d, c in zip(accumulate((c == '{') - (c == '}') for c in text), text)]
            self.macros[path] = {m.group(2) for m in ITEM_RE.finditer(text) if m.group(2)}
        owns_dir = parent is None or os.path.basename(path) == 'mod.rs'
        mod = Mod(path, parent, 0, (0, len(self.texts[path])), os.path.dirname(path) if owns_dir else path[:-3])
        self.populate(mod)
        return mod

    def populate(self, mod):
        """Collect the items, child modules and `use` bindings declared directly in `mod`."""
        self.mods.append(mod)
        text, depth = self.texts[mod.file], self.depths[mod.file]
        here = lambda m: mod.span[0] <= m.start() < mod.span[1] and depth[m.start()] == mod.depth
        mod.items.update((m.group(1) or m.group(2), mod.file) for m in filter(here, ITEM_RE.finditer(text)))
        for m in filter(here, MOD_RE.finditer(text)):
            name = m.group(1)
            if m.group(2) == '{':
                span = (m.end(), match_brace(text, m.end() - 1) - 1)
                mod.children[name] = child = Mod(mod.file, mod, mod.depth + 1, span, os.path.join(mod.childdir, name))
                self.populate(child)
            else:
                cands = [os.path.join(mod.childdir, name + '.rs'), os.path.join(mod.childdir, name, 'mod.rs')]
                if (cand := next(filter(os.path.isfile, cands), None)):
                    mod.children[name] = self.load(cand, mod)
        for m in filter(here, USE_RE.finditer(text)):
            for path, alias in parse_use_tree(m.group(2)):
                if alias == '*':
                    mod.globs.append(path)
                elif alias != '_':
                    mod.uses[alias] = path
                    if m.group(1):
                        mod.pub_uses.add(alias)

    def resolve(self, mod, path, busy=frozenset()):
        """Path -> ('mod', Mod) | ('item', defining_file, name) | None (not in this crate)."""
        cur, rest = mod, path                            # a relative path starts in `mod`'s scope
        if path[0] in ('crate', '$crate', 'self'):
            cur, rest = (mod if path[0] == 'self' else mod.root), path[1:]
        for seg in rest:
            if seg == 'super':
                cur = cur.parent
            else:
                r = self.lookup(cur, seg, busy)
                if r is None or r[0] == 'item':
                    return r                             # not in the crate, or a type: stop here
                cur = r[1]
            if cur is None:
                return None
        return ('mod', cur)

    def lookup(self, mod, name, busy=frozenset()):
        """What `name` means in `mod`: declared items first, then `use` bindings, then globs."""
        if (id(mod), name) in busy:                      # re-export loops (glob <-> glob)
            return None
        busy = busy | {(id(mod), name)}
        if name in mod.children:
            return ('mod', mod.children[name])
        if name in mod.items:
            return ('item', mod.items[name], name)
        if name in mod.uses:
            r = self.resolve(mod, mod.uses[name], busy)
            return r or (('item', mod.file, name) if name in mod.pub_uses else None)
        for g in mod.globs:
            t = self.resolve(mod, g, busy)
            if t and t[0] == 'mod' and (r := self.lookup(t[1], name, busy)):
                return r
        return None

    def edges(self):
        """{(from_file, to_file): {names}} over every file of every module tree."""
        edges, macros = {}, {n: f for f, names in self.macros.items() for n in names}

        def add(src, r):
            if r and r[0] == 'item' and r[1] != src:
                edges.setdefault((src, r[1]), set()).add(r[2])
        for file, root in {(m.file, m.root) for m in self.mods}:
            text, depth = self.texts[file], self.depths[file]
            mods = [m for m in self.mods if m.file == file and m.root is root]
            ctx = lambda pos: max((m for m in mods if m.span[0] <= pos <= m.span[1]), key=lambda m: m.depth)
            uses = list(USE_RE.finditer(text))              # code: without `use` and `mod` lines
            code = MOD_RE.sub(lambda m: spaces(m.group()[:-1]) + m.group()[-1], USE_RE.sub(lambda m: spaces(m.group()), text))
            words = set(WORD_RE.findall(code))
            for m in uses:
                mod = ctx(m.start())
                for path, alias in parse_use_tree(m.group(2)):
                    if alias != '*':
                        if not m.group(1) or alias in words:
                            add(file, self.resolve(mod, path))
                        continue
                    t, scope = self.resolve(mod, path), words
                    if depth[m.start()] > mod.depth:     # glob inside a block: words of that block
                        k = next(k for k in range(m.start(), -1, -1) if code[k] == '{' and depth[k] == depth[m.start()] - 1)
                        scope = set(WORD_RE.findall(code[k:match_brace(code, k)]))
                    if t and t[0] == 'mod':
                        for w in scope - set(mod.items) - set(mod.children) - set(mod.uses):
                            add(file, self.lookup(t[1], w))
            for m in PATH_RE.finditer(code):
                mod, first = ctx(m.start()), m.group(1)
                if first in KEYWORD_ROOTS or (self.lookup(mod, first) or ('',))[0] == 'mod':
                    add(file, self.resolve(mod, [first] + m.group(2).split('::')[1:]))
            for m in MACRO_CALL_RE.finditer(code):
                if m.group(1) in macros:
                    add(file, ('item', macros[m.group(1)], m.group(1) + '!'))
        return edges


def sccs(nodes, edges):
    """Strongly connected components, each a sorted list (graphs here are small)."""
    succ = {n: {b for (a, b) in edges if a == n} for n in nodes}

    def reach(n):
        seen, todo = set(), [n]
        while todo:
            todo += (new := succ[todo.pop()] - seen)
            seen |= new
        return seen
    r = {n: reach(n) for n in nodes}
    return sorted({tuple(sorted(m for m in r[n] if n in r[m]) or [n]) for n in nodes})


def package_name(cdir):
    """The [package] name in cdir/Cargo.toml ('?' if unnamed), or None if cdir is no crate."""
    if not (os.path.isfile(os.path.join(cdir, 'Cargo.toml')) and os.path.isdir(os.path.join(cdir, 'src'))):
        return None
    with open(os.path.join(cdir, 'Cargo.toml'), encoding='utf-8') as fh:
        m = re.search(r'(?ms)^\s*\[package\]\s*$(.*?)(?=^\s*\[|\Z)', fh.read())
    n = m and re.search(r'(?m)^\s*name\s*=\s*"([^"]+)"', m.group(1))
    return (n.group(1) if n else '?') if m else None


def check(cdir, label, verbose):
    """Print the crate's summary line (and its cycles); return the number of cycles."""
    crate, rel = Crate(cdir), lambda f: os.path.relpath(f, cdir)
    edges, nodes = crate.edges(), set(crate.texts)
    cycles = [c for c in sccs(nodes, edges) if len(c) > 1]
    print(f'{label} ({package_name(cdir)}): {len(nodes)} files, {len(cycles)} cycles')
    if verbose:
        for (a, b), names in sorted(edges.items()):
            print(f'  edge {rel(a)} -> {rel(b)}: {", ".join(sorted(names))}')
        found = {os.path.join(d, f) for d, _, fs in os.walk(os.path.join(cdir, 'src')) for f in fs if f.endswith('.rs')}
        for f in sorted(found - nodes):
            print(f'  not in any module tree: {rel(f)}')
    for k, comp in enumerate(cycles, 1):
        print(f'  cycle {k}: {", ".join(rel(f) for f in comp)}')
        for (a, b), names in sorted(edges.items()):
            if a in comp and b in comp:
                print(f'    {rel(a)} -> {rel(b)}: {", ".join(sorted(names))}')
    return len(cycles)


def main(argv):
    verbose, dirs = '--verbose' in argv, [os.path.abspath(a) for a in argv if a != '--verbose']
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for dirpath, dirnames, _ in ([] if dirs else os.walk(repo)):
        dirnames[:] = sorted(d for d in dirnames if d != 'target' and not d.startswith('.'))
        dirs += [dirpath] if package_name(dirpath) else []
    total = 0
    for d in dirs:
        if not package_name(d):
            print(f'{d}: not a crate (needs a Cargo.toml with [package] and a src/ dir)', file=sys.stderr)
            return 2
        rel = os.path.relpath(d, repo)
        total += check(d, d if rel.startswith('..') else rel, verbose)
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
