from ruleedit import *
s = load()
RB = 'https://github.com/pgmaint/pgmaint-exporter/blob/main/docs/runbook.md#'
PRIM = 'unless on (job, instance) pg_replication_in_recovery == 1'

s = replace(s, 'PostgresUnusedIndex', f'''      - alert: PostgresUnusedIndex
        # One alert per database, the value is the number of indexes over
        # 100 MiB that were never scanned for at least 7 days: unused in
        # every sample of the last 7 days and already present 6-7 days ago,
        # unless the statistics were reset within 7 days (then "never
        # scanned" covers less). The 7 days are in the expression, not in a
        # `for: 7d` that one missing sample would restart. Primary only:
        # standby scans are not counted on the primary and vice versa, and
        # an idle standby has no scans at all.
        expr: |
          count without (schemaname, relname, indexrelname) (
            pg_index_size_bytes > 100 * 1024 * 1024
            and min_over_time(pg_index_unused[7d]) == 1
            and last_over_time(pg_index_unused[1d] offset 6d)
            unless ignoring (schemaname, relname, indexrelname)
              time() - pg_index_stats_reset_timestamp_seconds < 7 * 86400
          )
          {PRIM}
        for: 1h
        labels:
          severity: warning
        annotations:
          summary: Large indexes are never used
          description: >-
            Database {{{{ $labels.datname }}}} on {{{{ $labels.instance }}}} has
            {{{{ $value }}}} index(es) over 100 MiB not scanned for at least 7
            days; the report lists them with the DROP INDEX command.
          runbook_url: {RB}postgresunusedindex
          report: /report?datname={{{{$labels.datname|urlquery}}}}''')

s = replace(s, 'PostgresDuplicateIndex', f'''      - alert: PostgresDuplicateIndex
        # One alert per database with the count; the report names them.
        expr: |
          count without (schemaname, relname, indexrelname) (
            pg_index_duplicate == 1
          )
          {PRIM}
        for: 1h
        labels:
          severity: warning
        annotations:
          summary: Indexes duplicate other indexes
          description: >-
            Database {{{{ $labels.datname }}}} on {{{{ $labels.instance }}}} has
            {{{{ $value }}}} index(es) identical to another index of the same
            table; they can be dropped.
          runbook_url: {RB}postgresduplicateindex
          report: /report?datname={{{{$labels.datname|urlquery}}}}''')

s = replace(s, 'PostgresTableBloat', f'''      - alert: PostgresTableBloat
        # One alert per database with the count; the report names them.
        expr: |
          count without (schemaname, relname) (
            pg_table_bloat_bytes > 1024 * 1024 * 1024
            and pg_table_bloat_ratio > 0.5
          )
          {PRIM}
        for: 1h
        labels:
          severity: warning
        annotations:
          summary: Tables are bloated
          description: >-
            Database {{{{ $labels.datname }}}} on {{{{ $labels.instance }}}} has
            {{{{ $value }}}} table(s) wasting an estimated 1 GiB or more, over
            half of their heap.
          runbook_url: {RB}postgrestablebloat
          report: /report?datname={{{{$labels.datname|urlquery}}}}''')

s = replace(s, 'PostgresIndexBloat', f'''      - alert: PostgresIndexBloat
        # One alert per database with the count; the report names them.
        expr: |
          count without (schemaname, relname, indexrelname) (
            pg_index_bloat_bytes > 1024 * 1024 * 1024
            and pg_index_bloat_ratio > 0.5
          )
          {PRIM}
        for: 1h
        labels:
          severity: warning
        annotations:
          summary: Indexes are bloated
          description: >-
            Database {{{{ $labels.datname }}}} on {{{{ $labels.instance }}}} has
            {{{{ $value }}}} index(es) wasting an estimated 1 GiB or more, over
            half of their size.
          runbook_url: {RB}postgresindexbloat
          report: /report?datname={{{{$labels.datname|urlquery}}}}''')
save(s)
