"""Replace / insert alert blocks in alerts/pgmaint.rules.yml by name."""
import re, sys
P = '/work/wt/h18/alerts/pgmaint.rules.yml'

def load():
    return open(P).read()

def save(s):
    open(P, 'w').write(s)

def block_span(s, name):
    m = re.search(r'^      - alert: %s\n' % re.escape(name), s, re.M)
    if not m:
        raise SystemExit('no alert ' + name)
    start = m.start()
    nxt = re.compile(r'^(      - (alert|record): |  - name: )', re.M)
    m2 = nxt.search(s, m.end())
    end = m2.start() if m2 else len(s)
    return start, end

def replace(s, name, text):
    a, b = block_span(s, name)
    return s[:a] + text.rstrip('\n') + '\n\n' + s[b:]

def insert_after(s, name, text):
    a, b = block_span(s, name)
    return s[:b] + text.rstrip('\n') + '\n\n' + s[b:]
