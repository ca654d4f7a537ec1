from ruleedit import *
s = load()
RB = 'https://github.com/pgmaint/pgmaint-exporter/blob/main/docs/runbook.md#'

s = replace(s, 'PostgresDown', f'''      - alert: PostgresDown
        expr: pg_up == 0
        for: 1m
        keep_firing_for: 5m
        labels:
          severity: critical
        annotations:
          summary: PostgreSQL does not answer the exporter
          description: >-
            The exporter {{{{ $labels.instance }}}} (job {{{{ $labels.job }}}})
            cannot connect to PostgreSQL or run its first query
            (pg_up = {{{{ $value }}}}) for over a minute.
          runbook_url: {RB}postgresdown''')

s = replace(s, 'PgmaintExporterDown', f'''      - alert: PgmaintExporterDown
        # Any job name: a target is an exporter of ours if it exported pg_up
        # in the last day (the shipped configs name their jobs pgmaint,
        # postgres, postgres-metrics, postgres-fleet, ...). While a scrape
        # fails pg_up is stale, so `up` is the only series left.
        expr: |
          up == 0
          and on (job, instance) present_over_time(pg_up[1d])
        for: 5m
        keep_firing_for: 5m
        labels:
          severity: critical
        annotations:
          summary: Prometheus cannot scrape pgmaint-exporter
          description: >-
            Scrapes of {{{{ $labels.instance }}}} (job {{{{ $labels.job }}}}) have
            failed for 5 minutes (up = {{{{ $value }}}}): no PostgreSQL alert of
            this target can fire, PostgresDown included.
          runbook_url: {RB}pgmaintexporterdown''')

s = insert_after(s, 'PgmaintExporterDown', f'''      - alert: PgmaintExporterVanished
        # Every target of a job that exported pg_up in the last day is gone
        # from service discovery (not failing: gone), so `up` is absent too
        # and PgmaintExporterDown cannot fire. Per job, not per instance: a
        # Kubernetes pod that is replaced gets a new instance address and
        # must not page for the old one.
        expr: |
          group by (job) (present_over_time(pg_up[1d]))
          unless on (job) group by (job) (up)
        for: 10m
        labels:
          severity: critical
        annotations:
          summary: Every pgmaint-exporter target of a job disappeared
          description: >-
            Job {{{{ $labels.job }}}} exported pg_up in the last day but has
            no target any more (instance {{{{ $labels.instance }}}} is empty:
            the whole job is gone from service discovery); none of its
            PostgreSQL servers is monitored.
          runbook_url: {RB}pgmaintexportervanished''')

s = replace(s, 'PgmaintCollectorFailing', f'''      - alert: PgmaintCollectorFailing
        # While PostgreSQL is down every collector fails: PostgresDown covers.
        # Collectors that feed critical alerts have their own, critical,
        # alert below.
        expr: |
          pg_scrape_collector_success{{collector!~"activity|database|sequences|archiver|settings|replication|wal_receiver|backup|wal_archive"}} == 0
          unless ignoring (collector, datname) pg_up == 0
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: A pgmaint-exporter collector keeps failing
          description: >-
            Collector {{{{ $labels.collector }}}}{{{{ if $labels.datname }}}} in
            database {{{{ $labels.datname }}}}{{{{ end }}}} on {{{{ $labels.instance }}}}
            has failed every scrape for 15 minutes; its metrics are missing.
          runbook_url: {RB}pgmaintcollectorfailing

      - alert: PgmaintCriticalCollectorFailing
        # These collectors feed critical alerts (connections exhausted, XID
        # and MultiXact wraparound, integer key overflow, WAL archiving,
        # backups, standby streaming): while one fails, those alerts cannot
        # fire, and the ones firing would resolve (keep_firing_for bridges
        # only a short outage).
        expr: |
          pg_scrape_collector_success{{collector=~"activity|database|sequences|archiver|settings|replication|wal_receiver|backup|wal_archive"}} == 0
          unless ignoring (collector, datname) pg_up == 0
        for: 10m
        labels:
          severity: critical
        annotations:
          summary: A collector feeding critical alerts keeps failing
          description: >-
            Collector {{{{ $labels.collector }}}}{{{{ if $labels.datname }}}} in
            database {{{{ $labels.datname }}}}{{{{ end }}}} on {{{{ $labels.instance }}}}
            has failed every scrape for 10 minutes; critical alerts that
            depend on it (see the runbook) cannot fire.
          runbook_url: {RB}pgmaintcriticalcollectorfailing

      - alert: PgmaintExporterRoleUnprivileged
        # Without pg_monitor the exporter sees other roles' sessions without
        # state, query start or xmin: the idle-in-transaction, long-query,
        # lock-wait and xmin-horizon series disappear and their alerts go
        # silent. Superusers have everything anyway.
        expr: |
          pgmaint_exporter_role_privilege{{privilege="pg_monitor"}} == 0
          unless on (job, instance)
            pgmaint_exporter_role_privilege{{privilege="superuser"}} == 1
        for: 10m
        keep_firing_for: 10m
        labels:
          severity: critical
        annotations:
          summary: The exporter's role lacks pg_monitor
          description: >-
            The role the exporter {{{{ $labels.instance }}}} (job
            {{{{ $labels.job }}}}) connects with is neither superuser nor a
            member of pg_monitor: sessions, locks, xmin horizons and pg_wal are
            hidden from it, and the alerts on them cannot fire.
          runbook_url: {RB}pgmaintexporterroleunprivileged

      - alert: PgmaintTablesOmitted
        expr: pgmaint_exporter_tables_omitted > 0
        for: 1h
        labels:
          severity: warning
        annotations:
          summary: Tables get no series because of the table cap
          description: >-
            {{{{ $value }}}} table(s) of database {{{{ $labels.datname }}}} on
            {{{{ $labels.instance }}}} passed the filters but got no series
            (PGMAINT_MAX_TABLES_PER_DATABASE): no table alert can fire for
            them.
          runbook_url: {RB}pgmainttablesomitted
          report: /report?datname={{{{$labels.datname|urlquery}}}}''')
save(s)
