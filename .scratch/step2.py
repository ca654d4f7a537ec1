from ruleedit import *
import re
s = load()
RB = 'https://github.com/pgmaint/pgmaint-exporter/blob/main/docs/runbook.md#'

s = insert_after(s, 'PostgresLockWaitLong', f'''      - alert: PostgresLockQueuePileUp
        # Many sessions queued behind locks at once (typically behind one
        # ALTER TABLE waiting for a long transaction): the application stalls
        # long before any single wait reaches PostgresLockWaitLong.
        expr: pg_activity_lock_waiting_sessions > 10
        for: 2m
        labels:
          severity: warning
        annotations:
          summary: Many sessions queue for locks
          description: >-
            {{{{ $value }}}} sessions in database {{{{ $labels.datname }}}} on
            {{{{ $labels.instance }}}} are waiting for a heavyweight lock.
          runbook_url: {RB}postgreslockqueuepileup
          report: /report?datname={{{{$labels.datname|urlquery}}}}

      - alert: PostgresDeadlocks
        # Every deadlock aborts a transaction; one a day is an application
        # bug to fix, not a page.
        expr: increase(pg_database_deadlocks_total[15m]) > 0
        labels:
          severity: warning
        annotations:
          summary: Transactions were aborted by deadlocks
          description: >-
            Database {{{{ $labels.datname }}}} on {{{{ $labels.instance }}}} had
            {{{{ $value | humanize }}}} deadlock(s) in the last 15 minutes; the
            server log names the statements.
          runbook_url: {RB}postgresdeadlocks''')

# keep_firing_for on the critical connections alert
s = s.replace('''          > 0.95
        for: 2m
        labels:
          severity: critical''', '''          > 0.95
        for: 2m
        keep_firing_for: 5m
        labels:
          severity: critical''')

s = replace(s, 'PostgresTableAutovacuumDisabled', f'''      - alert: PostgresTableAutovacuumDisabled
        # Autovacuum off means no autovacuum will come: waiting a day adds
        # nothing but the risk that one missing sample restarts the wait.
        expr: |
          pg_table_dead_tuples > pg_table_autovacuum_vacuum_trigger_tuples
          and pg_table_dead_tuples > 10000
          and pg_table_autovacuum_enabled == 0
        for: 2h
        labels:
          severity: warning
        annotations:
          summary: A table needs VACUUM but autovacuum is off for it
          description: >-
            {{{{ $labels.datname }}}}.{{{{ $labels.schemaname }}}}.{{{{ $labels.relname
            }}}} on {{{{ $labels.instance }}}} has {{{{ $value | humanize }}}} dead
            tuples, past its vacuum trigger point for two hours, and
            autovacuum is disabled for it (reloption, autovacuum or
            track_counts off).
          runbook_url: {RB}postgrestableautovacuumdisabled
          report: /report?datname={{{{$labels.datname|urlquery}}}}&relname={{{{$labels.relname|urlquery}}}}''')

s = replace(s, 'PostgresTableNotVacuumed', f'''      - alert: PostgresTableNotVacuumed
        # Newest of last_vacuum and last_autovacuum is over 7 days old while
        # the table is past one of its own autovacuum trigger points (dead
        # tuples or inserts since the last vacuum): autovacuum should have
        # come and did not. A big table whose changes stay below its trigger
        # is handled exactly as designed and stays silent. The timestamps
        # carry the duration, so a short `for:` survives sample gaps.
        expr: |
          (
            time() - (
                pg_table_last_autovacuum_timestamp_seconds
                  > pg_table_last_vacuum_timestamp_seconds
              or pg_table_last_vacuum_timestamp_seconds
              or pg_table_last_autovacuum_timestamp_seconds
            )
          ) > 7 * 86400
          and (
              pg_table_dead_tuples > pg_table_autovacuum_vacuum_trigger_tuples
            or pg_table_inserted_since_vacuum_tuples
              > pg_table_autovacuum_insert_trigger_tuples
          )
        for: 30m
        labels:
          severity: warning
        annotations:
          summary: A table past its autovacuum trigger was not vacuumed for days
          description: >-
            {{{{ $labels.datname }}}}.{{{{ $labels.schemaname }}}}.{{{{ $labels.relname
            }}}} on {{{{ $labels.instance }}}} was last vacuumed
            {{{{ $value | humanizeDuration }}}} ago although its dead or inserted
            tuples are past its autovacuum trigger point.
          runbook_url: {RB}postgrestablenotvacuumed
          report: /report?datname={{{{$labels.datname|urlquery}}}}&relname={{{{$labels.relname|urlquery}}}}''')

s = replace(s, 'PostgresTableNotAnalyzed', f'''      - alert: PostgresTableNotAnalyzed
        # As PostgresTableNotVacuumed, with the analyze trigger point.
        expr: |
          (
            time() - (
                pg_table_last_autoanalyze_timestamp_seconds
                  > pg_table_last_analyze_timestamp_seconds
              or pg_table_last_analyze_timestamp_seconds
              or pg_table_last_autoanalyze_timestamp_seconds
            )
          ) > 7 * 86400
          and pg_table_modified_since_analyze_tuples
            > pg_table_autovacuum_analyze_trigger_tuples
        for: 30m
        labels:
          severity: warning
        annotations:
          summary: A table past its analyze trigger was not analyzed for days
          description: >-
            {{{{ $labels.datname }}}}.{{{{ $labels.schemaname }}}}.{{{{ $labels.relname
            }}}} on {{{{ $labels.instance }}}} was last analyzed
            {{{{ $value | humanizeDuration }}}} ago although more rows changed
            since than its autoanalyze trigger point; the planner works with
            old statistics.
          runbook_url: {RB}postgrestablenotanalyzed
          report: /report?datname={{{{$labels.datname|urlquery}}}}&relname={{{{$labels.relname|urlquery}}}}''')
save(s)
