import re
p='/work/wt/h18/docs/runbook.md'
s=open(p).read()
def section(name):
    a=s.index('## '+name+'\n')
    m=re.compile(r'^## ', re.M).search(s, a+3)
    return a, (m.start() if m else len(s))
def insert_after(name, text):
    global s
    a,b=section(name); s=s[:b]+text.rstrip('\n')+'\n\n'+s[b:]
def rep(a,b):
    global s
    assert a in s, a
    s=s.replace(a,b,1)

insert_after('PostgresPendingRestart', '''## PostgresRestarted

**Meaning.** `pg_postmaster_start_time()` changed in the last 15 minutes: PostgreSQL was restarted, by
someone or by a crash (after a backend crash the postmaster reinitialises and replays WAL; a full restart
shows here). An exporter restart does not change the value, and a failover shows on the new primary only
if it was restarted.

**Confirm.**

```sql
SELECT pg_postmaster_start_time(), now() - pg_postmaster_start_time() AS up_for;
```

The server log around that time: `database system was interrupted`, `terminated by signal`,
`database system was not properly shut down; automatic recovery in progress` mean a crash.

**Act.** If nobody restarted it, find the crash cause in the log (OOM killer: `dmesg`), and check the
standbys and the application's reconnects.

**Tune.** `[15m]`, no `for:`: it resolves 15 minutes after the start.''')

insert_after('PostgresWalDirectoryGrowing', '''## PostgresCheckpointsRequested

**Meaning.** More than 3 requested checkpoints in the last hour, and more requested than timed ones, for
15 minutes. Requested checkpoints are forced by WAL volume (`max_wal_size`), `CHECKPOINT`, base backups
or shutdown; each writes every dirty buffer early and makes the next change of every page a full-page
image in WAL. On PostgreSQL 14–16 timed checkpoints include skipped ones, so an idle server never fires.

**Confirm.**

```sql
SELECT checkpoints_timed, checkpoints_req, stats_reset FROM pg_stat_bgwriter;     -- 14-16
SELECT num_timed, num_requested, stats_reset FROM pg_stat_checkpointer;          -- 17+
SHOW max_wal_size;
SHOW checkpoint_timeout;
```

The server log with `log_checkpoints = on` says `checkpoint starting: wal` for the forced ones.

**Act.** Raise `max_wal_size` so that `checkpoint_timeout` triggers most checkpoints (reload, no
restart). Watch the disk: `pg_wal` grows to about `max_wal_size`.

**Tune.** `> 3` per `[1h]`, `for: 15m`.''')

insert_after('PostgresStandbyReplayStuck', '''## PostgresStandbyNotStreaming

**Meaning.** Seen from the standby itself (`pg_stat_wal_receiver`): no WAL receiver runs, or it is not in
state `streaming`, for 2 minutes, on a standby that streamed in the last 7 days. The primary no longer
lists it in `pg_stat_replication` (its `pg_replication_standby_*` series vanish, so the lag alerts cannot
fire), and the standby falls further behind; with a slot, the primary keeps its WAL. After a disconnect
the startup process retries only after `wal_retrieve_retry_interval`, and meanwhile restores from the
archive if `restore_command` is set.

**Confirm,** on the standby:

```sql
SELECT status, sender_host, sender_port, slot_name, last_msg_receipt_time, latest_end_lsn
  FROM pg_stat_wal_receiver;          -- no row: no WAL receiver runs
SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn();
SHOW primary_conninfo;
SHOW wal_retrieve_retry_interval;
```

The standby's log says why the receiver stopped (`could not connect to the primary server`, `terminating
walreceiver process`, authentication, a missing slot, a timeline the primary does not have).

**Act.** Fix the connection (network, `pg_hba.conf`, password, the slot on the primary). If the primary
removed WAL the standby needs (`requested WAL segment … has already been removed`), rebuild the standby
or give it a `restore_command` from the archive.

**Tune.** `for: 2m`; the `[7d]` window leaves out standbys that restore from the archive only (they never
stream). Needs `pg_monitor` (without it the status is hidden and the metric absent; see
[PgmaintExporterRoleUnprivileged](#pgmaintexporterroleunprivileged)).

## PostgresRecoveryConflicts

**Meaning.** More than 5 queries in the database on this standby were cancelled in the last hour because
WAL replay needed what they read: rows that VACUUM on the primary removed (snapshot), a lock taken on the
primary, a dropped tablespace or database, a buffer pin.

**Confirm,** on the standby:

```sql
SELECT * FROM pg_stat_database_conflicts WHERE datname = 'app';
SHOW max_standby_streaming_delay;
SHOW hot_standby_feedback;
```

**Act.** For snapshot conflicts, `hot_standby_feedback = on` (the primary then keeps rows the standby's
queries need: watch [PostgresXminHorizonHeldBack](#postgresxminhorizonheldback)) or a larger
`max_standby_streaming_delay` (replay then waits for queries). Move long reports to a standby that may
lag.

**Tune.** `> 5` per `[1h]`, no `for:`.

## PostgresClusterNoPrimary

**Meaning.** Among the monitored servers sharing a `cluster` label (see [the `cluster`
label](#runbook)), every one is a standby, for 2 minutes: nothing accepts writes, or the primary is not
monitored (its exporter is down: then [PgmaintExporterDown](#pgmaintexporterdown) fires too). After a
failed promotion or a fenced primary this is the page that says so.

**Confirm.** `SELECT pg_is_in_recovery();` on each server; the HA manager's status (`patronictl list`,
`kubectl cnpg status`).

**Act.** Promote the most advanced standby (`SELECT pg_promote();` or the HA manager) or bring the
primary back.

**Tune.** `for: 2m`, `keep_firing_for: 5m`. Servers without a `cluster` label are not checked.

## PostgresClusterSplitBrain

**Meaning.** More than one server with the same `cluster` label is a primary, for a minute: after a
failover the old primary came back as a primary, or a standby was promoted by mistake. Clients that
write to both make their data diverge.

**Confirm.** `SELECT pg_is_in_recovery(), pg_postmaster_start_time(), timeline_id FROM
pg_control_checkpoint();` on each; which one the clients and the HA manager point at.

**Act.** Fence the one that should not be primary at once (stop it, or block clients in `pg_hba.conf`),
then rebuild it as a standby (`pg_rewind` or a new base backup). Compare what was written to it since the
promotion.

**Tune.** `for: 1m`, `keep_firing_for: 5m`. Give unrelated servers different `cluster` values, or none.''')
open(p,'w').write(s)
