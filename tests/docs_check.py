#!/usr/bin/env python3
"""The documents a user reads: README.md and docs/*.md.

Checks what a reader would trip over and no one notices in review:
  - README.md stays a five-minute read: at most 250 lines;
  - every relative link in them points at a file of the tree, and every
    #anchor at a heading of that file (GitHub's slugs);
  - every docs/*.md page is linked from the README;
  - no document names a folder of the machine it was written on (a user's
    clone has none of them): /work/, /home/<name>/, /root/, /mnt/, /Users/.
Usage: docs_check.py SOURCE_DIR
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else '.'
problems = []


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    s = heading.strip().lower()
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')


def anchors(path):
    found, seen, fence = set(), {}, False
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.startswith('```'):
                fence = not fence
            if fence:
                continue
            m = re.match(r'^#{1,6} (.*)', line)
            if m:
                base = slug(m.group(1))
                n = seen.get(base, 0)
                found.add(base if n == 0 else f'{base}-{n}')
                seen[base] = n + 1
    return found


docs = sorted(os.path.join('docs', f) for f in os.listdir(os.path.join(root, 'docs'))
              if f.endswith('.md'))
files = ['README.md'] + docs

with open(os.path.join(root, 'README.md'), encoding='utf-8') as f:
    readme = f.read()
lines = readme.count('\n')
if lines > 250:
    problems.append(f'README.md: {lines} lines; at most 250 (move detail into docs/)')

machine = re.compile(r'(/work/|/home/[a-z_][a-z0-9_-]*/|/root/|/mnt/|/Users/)')
link = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')
for rel in files:
    path = os.path.join(root, rel)
    with open(path, encoding='utf-8') as f:
        text = f.read()
    for no, line in enumerate(text.split('\n'), 1):
        m = machine.search(line)
        if m:
            problems.append(f'{rel}:{no}: names a folder of a machine ({m.group(1)})')
        for target in link.findall(line):
            if re.match(r'^[a-z]+:', target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(dest):
                problems.append(f'{rel}:{no}: link to {target}: no such file')
            elif anchor and dest.endswith('.md') and anchor not in anchors(dest):
                problems.append(f'{rel}:{no}: link to {target}: no heading with that anchor')

for page in docs:
    if f'({page})' not in readme and f'({page}#' not in readme:
        problems.append(f'README.md: does not link {page}')

for p in problems:
    print(p)
print(f'docs_check: {len(files)} documents, {lines} README lines, {len(problems)} problem(s)')
sys.exit(1 if problems else 0)
