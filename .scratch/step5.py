from ruleedit import *
s = load()
RB = 'https://github.com/pgmaint/pgmaint-exporter/blob/main/docs/runbook.md#'

s = replace(s, 'PostgresReplicationLagHigh', f'''      - alert: PostgresReplicationLagHigh
        # Only WAL receivers that replay (pg_receivewal has no replay LSN).
        # Without `pid`: a standby that reconnects every few minutes gets a
        # new pid each time, and per-pid series would restart the `for:`
        # on every reconnect, so its lag would never alert.
        expr: |
          max without (pid) (
            pg_replication_standby_replay_lag_seconds > 300
            and pg_replication_standby_replay_lag_bytes
          )
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: A standby replays WAL late
          description: >-
            Standby {{{{ $labels.application_name }}}} ({{{{ $labels.client_addr
            }}}}, slot "{{{{ $labels.slot_name }}}}") of {{{{ $labels.instance }}}}
            replays WAL {{{{ $value | humanizeDuration }}}} behind.
          runbook_url: {RB}postgresreplicationlaghigh''')

s = replace(s, 'PostgresReplicationLagBytesHigh', f'''      - alert: PostgresReplicationLagBytesHigh
        # Replay lag where the receiver replays, else flush lag; without
        # `pid` as in PostgresReplicationLagHigh.
        expr: |
          max without (pid) (
              pg_replication_standby_replay_lag_bytes > 1024 * 1024 * 1024
            or pg_replication_standby_flush_lag_bytes > 1024 * 1024 * 1024
          )
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: A standby is far behind in WAL
          description: >-
            Standby {{{{ $labels.application_name }}}} ({{{{ $labels.client_addr
            }}}}, slot "{{{{ $labels.slot_name }}}}") of {{{{ $labels.instance }}}} is
            {{{{ $value | humanize1024 }}}}B of WAL behind.
          runbook_url: {RB}postgresreplicationlagbyteshigh''')

s = insert_after(s, 'PostgresStandbyReplayStuck', f'''      - alert: PostgresStandbyNotStreaming
        # Seen from the standby itself (pg_stat_wal_receiver): no WAL
        # receiver runs, or it is not in state streaming. On the primary
        # such a standby just vanishes from pg_stat_replication. Standbys
        # that never streamed in the last 7 days (archive-only recovery)
        # are left out.
        expr: |
          pg_wal_receiver_streaming == 0
          and on (job, instance) max_over_time(pg_wal_receiver_streaming[7d]) == 1
        for: 2m
        labels:
          severity: warning
        annotations:
          summary: A standby does not stream WAL from its upstream
          description: >-
            Standby {{{{ $labels.instance }}}} has no streaming WAL receiver
            (pg_wal_receiver_streaming = {{{{ $value }}}}); it falls behind and
            its upstream no longer lists it.
          runbook_url: {RB}postgresstandbynotstreaming

      - alert: PostgresRecoveryConflicts
        # Queries cancelled on a standby because replay needed what they
        # read (vacuum cleanup, locks, dropped tablespaces, snapshots).
        expr: increase(pg_database_conflicts_total[1h]) > 5
        labels:
          severity: warning
        annotations:
          summary: Queries on a standby are cancelled by recovery conflicts
          description: >-
            {{{{ $value | humanize }}}} queries in database
            {{{{ $labels.datname }}}} on standby {{{{ $labels.instance }}}} were
            cancelled by recovery conflicts in the last hour.
          runbook_url: {RB}postgresrecoveryconflicts

      - alert: PostgresClusterNoPrimary
        # Fleet check over the instances that share a `cluster` label (set
        # it in the scrape config, see docs/runbook.md): none is a primary.
        expr: |
          count by (cluster) (pg_replication_in_recovery{{cluster!=""}} == 1)
          unless on (cluster)
            count by (cluster) (pg_replication_in_recovery{{cluster!=""}} == 0)
        for: 2m
        keep_firing_for: 5m
        labels:
          severity: critical
        annotations:
          summary: No primary among the servers of a cluster
          description: >-
            All {{{{ $value }}}} monitored servers of cluster
            {{{{ $labels.cluster }}}} are standbys (instance
            {{{{ $labels.instance }}}}: none): nothing accepts writes, or the
            primary is not monitored.
          runbook_url: {RB}postgresclusternoprimary

      - alert: PostgresClusterSplitBrain
        expr: |
          count by (cluster) (pg_replication_in_recovery{{cluster!=""}} == 0) > 1
        for: 1m
        keep_firing_for: 5m
        labels:
          severity: critical
        annotations:
          summary: More than one primary in a cluster
          description: >-
            {{{{ $value }}}} servers of cluster {{{{ $labels.cluster }}}} are
            primaries at once (instance {{{{ $labels.instance }}}}: several):
            clients may write to both, and their data diverges.
          runbook_url: {RB}postgresclustersplitbrain''')
save(s)
