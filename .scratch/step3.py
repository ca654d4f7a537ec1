from ruleedit import *
import re
s = load()

GATE = ['PostgresXidAgeHigh', 'PostgresXidWraparoundImminent', 'PostgresMultixactAgeHigh',
        'PostgresMultixactWraparoundImminent', 'PostgresTableXidAgeHigh',
        'PostgresSequenceNearExhaustion', 'PostgresIntegerKeyNearExhaustion',
        'PostgresIntegerKeyExhaustionImminent', 'PostgresInvalidIndex', 'PostgresDatabaseGrowingFast']
for name in GATE:
    a, b = block_span(s, name)
    blk = s[a:b]
    m = re.search(r'^        expr: (\|\n((?:          .*\n|\n)+)|(.*)\n)', blk, re.M)
    if m.group(2):
        body = [l[10:] for l in m.group(2).rstrip('\n').split('\n')]
    else:
        body = [m.group(3)]
    inner = '\n'.join('            ' + l if l else '' for l in body)
    new = ('        expr: |\n          (\n' + inner + '\n          )\n'
           '          unless on (job, instance) pg_replication_in_recovery == 1\n')
    if name in ('PostgresXidAgeHigh',):
        pass
    blk = blk[:m.start()] + new + blk[m.end():]
    if 'severity: critical' in blk and 'keep_firing_for' not in blk:
        blk = re.sub(r'^(        for: .*\n)', r'\1        keep_firing_for: 15m\n', blk, flags=re.M)
    s = s[:a] + blk + s[b:]
save(s)
