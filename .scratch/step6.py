from ruleedit import *
s = load()
RB = 'https://github.com/pgmaint/pgmaint-exporter/blob/main/docs/runbook.md#'
for old, new in [
 ('''            All {{ $value }} monitored servers of cluster
            {{ $labels.cluster }} are standbys (instance
            {{ $labels.instance }}: none): nothing accepts writes, or the
            primary is not monitored.''',
  '''            All {{ $value }} monitored servers of cluster
            {{ $labels.cluster }} are standbys: nothing accepts writes, or
            the primary is not monitored.'''),
 ('''            {{ $value }} servers of cluster {{ $labels.cluster }} are
            primaries at once (instance {{ $labels.instance }}: several):
            clients may write to both, and their data diverges.''',
  '''            {{ $value }} servers of cluster {{ $labels.cluster }} are
            primaries at once: clients may write to more than one, and
            their data diverges.''')]:
    assert old in s, old
    s = s.replace(old, new)

s = insert_after(s, 'PostgresPendingRestart', f'''      - alert: PostgresRestarted
        # pg_postmaster_start_time() moved: a restart, or a crash with crash
        # recovery (the postmaster survives a backend crash but the value
        # changes only on a full restart; the server log tells which).
        # An exporter restart does not change it.
        expr: changes(pg_postmaster_start_time_seconds[15m]) > 0
        labels:
          severity: warning
        annotations:
          summary: PostgreSQL restarted
          description: >-
            PostgreSQL on {{{{ $labels.instance }}}} started
            {{{{ $value }}}} time(s) in the last 15 minutes; if nobody
            restarted it, look for a crash in the server log.
          runbook_url: {RB}postgresrestarted''')

s = insert_after(s, 'PostgresWalDirectoryGrowing', f'''      - alert: PostgresCheckpointsRequested
        # More checkpoints forced by WAL volume (max_wal_size), CHECKPOINT or
        # base backups than timed ones, and more than a handful: each forced
        # checkpoint writes all dirty buffers early and makes the next
        # writes full-page images. Timed checkpoints on PG <= 16 include
        # skipped ones, so an idle server never fires.
        expr: |
          increase(pg_checkpointer_checkpoints_requested_total[1h]) > 3
          and increase(pg_checkpointer_checkpoints_requested_total[1h])
            > increase(pg_checkpointer_checkpoints_timed_total[1h])
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: Most checkpoints are forced, not timed
          description: >-
            {{{{ $labels.instance }}}} had {{{{ $value | humanize }}}} requested
            checkpoints in the last hour, more than timed ones:
            max_wal_size is probably too small for the write load.
          runbook_url: {RB}postgrescheckpointsrequested''')
save(s)
