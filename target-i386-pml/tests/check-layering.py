#!/usr/bin/env python3
"""Check the layering of target-i386-pml/*.c (issue 18); TAP output.

The VMX emulation files must call each other without loops: shared
helpers live in vmx-base.c, which calls no other file of the directory
except a few leaves, and every feature file only calls "down".

The check reads the C files as text (no compiler needed):

  * comments, string and character literals are blanked out;
  * a non-static function definition is a top-level "name(...) {" whose
    declaration does not say "static";
  * file A depends on file B when A names a function B defines
    (a call, or its address taken), outside of B itself.

It asserts:

  1. the file graph has no cycle (a cycle found is printed);
  2. vmx-base.c uses functions of no other file but the allowed leaves;
  3. each .c file starts with a comment that names the Intel SDM part it
     implements ("SDM"), or says that it "implements no architecture".

Usage: check-layering.py [DIR]   (default: the directory above this one)
"""
import os
import re
import sys

BASE = 'vmx-base.c'
# Leaves vmx-base.c may use: they call no other file of the directory.
BASE_ALLOWED = {'vmcs-fields.c', 'vmx-caps.c', 'vmx-stats.c', 'vmx-mutate.c', 'vmx-tlb.c'}

IDENT = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')
KEYWORDS = {'if', 'for', 'while', 'switch', 'return', 'sizeof', 'do', 'else',
            'case', 'goto', 'typeof', '__attribute__', 'defined'}


def strip_comments(text):
    """Blank comments and literals, keeping newlines and offsets."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r'[^\n]', ' ', text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def first_comment(text):
    """The text of the file's first /* */ comment, or ''."""
    m = re.match(r'\s*/\*(.*?)\*/', text, re.S)
    return m.group(1) if m else ''


def strip_preprocessor(code):
    """Blank preprocessor lines (with their continuations)."""
    lines = code.split('\n')
    out, cont = [], False
    for line in lines:
        directive = cont or line.lstrip().startswith('#')
        cont = directive and line.rstrip().endswith('\\')
        out.append('' if directive else line)
    return '\n'.join(out)


def definitions(code):
    """Non-static function definitions at file scope: {name: is_static}."""
    code = strip_preprocessor(code)
    found = {}
    depth = 0
    start = 0           # where the current top-level declaration starts
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == '{':
            if depth == 0:
                decl = code[start:i]
                m = re.search(r'([A-Za-z_]\w*)\s*\(([^()]|\([^()]*\))*\)\s*$', decl)
                if m and m.group(1) not in KEYWORDS and '=' not in decl:
                    words = set(IDENT.findall(decl[:m.start()]))
                    found[m.group(1)] = 'static' in words
            depth += 1
        elif c == '}':
            depth -= 1
            if depth == 0:
                start = i + 1
        elif c == ';' and depth == 0:
            start = i + 1
        i += 1
    return found


def load(directory):
    files = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith('.c'):
            with open(os.path.join(directory, name), encoding='utf-8') as f:
                text = f.read()
            files[name] = (text, strip_comments(text))
    return files


def build_graph(files):
    """{file: {other file: sorted names it uses}}, and who defines what."""
    owner = {}
    for name, (_, code) in files.items():
        for fn, static in definitions(code).items():
            if not static:
                owner.setdefault(fn, name)
    graph = {name: {} for name in files}
    for name, (_, code) in files.items():
        # A use: the identifier, not a member (.x or ->x) of something.
        for m in re.finditer(r'(?<![\w.>])([A-Za-z_]\w*)\b', code):
            fn = m.group(1)
            other = owner.get(fn)
            if other and other != name:
                graph[name].setdefault(other, set()).add(fn)
    return owner, {a: {b: sorted(fns) for b, fns in edges.items()}
                   for a, edges in graph.items()}


def find_cycle(graph):
    """One cycle as a list of files (first == last), or None."""
    colour = {v: 0 for v in graph}     # 0 new, 1 on the stack, 2 done
    stack = []

    def visit(v):
        colour[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if colour[w] == 1:
                return stack[stack.index(w):] + [w]
            if colour[w] == 0:
                cycle = visit(w)
                if cycle:
                    return cycle
        stack.pop()
        colour[v] = 2
        return None

    for v in sorted(graph):
        if colour[v] == 0:
            cycle = visit(v)
            if cycle:
                return cycle
    return None


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, ok, what, diag=()):
        self.n += 1
        print('%s %d - %s' % ('ok' if ok else 'not ok', self.n, what))
        for line in diag:
            print('# ' + line)
        if not ok:
            self.failed += 1


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(here)
    files = load(directory)
    owner, graph = build_graph(files)
    tap = Tap()

    tap.check(len(files) > 0 and len(owner) > 0,
              'found %d C files defining %d global functions in %s'
              % (len(files), len(owner), directory))

    cycle = find_cycle(graph)
    diag = []
    if cycle:
        diag.append('cycle: ' + ' -> '.join(cycle))
        for a, b in zip(cycle, cycle[1:]):
            diag.append('  %s -> %s: %s' % (a, b, ', '.join(graph[a][b])))
    tap.check(cycle is None, 'no cycle among the files of target-i386-pml/', diag)

    base_edges = graph.get(BASE)
    bad = {b: fns for b, fns in (base_edges or {}).items() if b not in BASE_ALLOWED}
    diag = ['%s -> %s: %s' % (BASE, b, ', '.join(fns)) for b, fns in sorted(bad.items())]
    if base_edges is None:
        diag.append('%s is missing' % BASE)
    tap.check(base_edges is not None and not bad,
              '%s uses no other file but the leaves %s'
              % (BASE, ', '.join(sorted(BASE_ALLOWED))), diag)

    for b in sorted(BASE_ALLOWED & set(files)):
        tap.check(not graph[b], 'leaf %s uses no other file' % b,
                  ['%s -> %s: %s' % (b, c, ', '.join(fns)) for c, fns in sorted(graph[b].items())])

    for name, (text, _) in sorted(files.items()):
        head = first_comment(text)
        ok = 'SDM' in head or re.search(r'implements\s+no\s+architecture', head)
        tap.check(bool(ok), '%s: first comment names its SDM part or says it implements '
                  'no architecture' % name,
                  [] if ok else ['first comment: %r' % head.strip()[:200]])

    # The layers, for the reader: each file after everything it uses.
    if not cycle:
        order, done = [], set()

        def place(v):
            if v not in done:
                done.add(v)
                for w in sorted(graph[v]):
                    place(w)
                order.append(v)
        for v in sorted(graph):
            place(v)
        for v in order:
            print('# %s -> %s' % (v, ', '.join(sorted(graph[v])) or '(nothing)'))

    print('1..%d' % tap.n)
    return 1 if tap.failed else 0


if __name__ == '__main__':
    sys.exit(main())
