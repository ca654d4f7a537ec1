import re
p='/work/wt/h18/docs/runbook.md'
s=open(p).read()
def section(name):
    a=s.index('## '+name+'\n')
    m=re.compile(r'^## ', re.M).search(s, a+3)
    return a, (m.start() if m else len(s))
def replace_section(name, text):
    global s
    a,b=section(name); s=s[:a]+text.rstrip('\n')+'\n\n'+s[b:]
def insert_after(name, text):
    global s
    a,b=section(name); s=s[:b]+text.rstrip('\n')+'\n\n'+s[b:]
def rep(a,b):
    global s
    assert a in s, a
    s=s.replace(a,b,1)

rep('''Severity: `critical` pages someone now, `warning` opens a ticket for working hours. The example
[`alerts/alertmanager.yml`](../alerts/alertmanager.yml) routes them that way, groups by `cluster`,
`instance` and `datname`, and suppresses every other alert of an instance while `PostgresDown` fires for it
(they are symptoms), and a warning while its critical counterpart fires for the same object (connections,
XID and MultiXact wraparound, integer keys).''','''Severity: `critical` pages someone now, `warning` opens a ticket for working hours. The example
[`alerts/alertmanager.yml`](../alerts/alertmanager.yml) routes them that way and groups by alert name and
object (cluster, job, instance, database, table, index, slot, ...), so one notification is about one thing
and a new table in trouble does not re-send everything else. It suppresses every other alert of an
instance while `PostgresDown` fires for it (they are symptoms), except the backup and WAL-archive alerts,
which are read from files and are what a restore decision needs; vacuum, bloat and age warnings while
[PostgresXminHorizonHeldBack](#postgresxminhorizonheldback) fires (their root cause);
[PostgresWalDirectoryGrowing](#postgreswaldirectorygrowing) while archiving fails or an inactive slot
holds WAL; and a warning while its critical counterpart fires for the same object (connections, XID and
MultiXact wraparound, integer keys).

Critical alerts have `keep_firing_for`: a missed scrape or a collector that fails for a moment does not
resolve them (and re-page when they return); a collector that feeding them keeps failing pages on its own
([PgmaintCriticalCollectorFailing](#pgmaintcriticalcollectorfailing)). Catalog-derived alerts (indexes,
bloat, sequences, XID and MultiXact age) are evaluated on primaries only: a standby has the primary's
catalog, so they would fire once per replica, and an idle standby never scans an index.

**The `cluster` label.** The fleet alerts ([PostgresClusterNoPrimary](#postgresclusternoprimary),
[PostgresClusterSplitBrain](#postgresclustersplitbrain)) compare the servers that share a `cluster` label:
give a primary and its standbys the same value, and unrelated servers different ones. The shipped configs
set it: `deploy/compose/prometheus.yml` (`cluster: demo`), `examples/fleet/*.yml` (per group), and on
Kubernetes the `cluster` label of the scraped Service (`deploy/kubernetes/sidecar.yaml`), which
`servicemonitor.yaml` copies onto the series with `targetLabels`. Without it those two alerts stay silent.

**Runbook links.** Every `runbook_url` is one base plus `#<alert name in lower case>`. The base is set
once, in `scripts/gen-prometheusrule.sh` (`PGMAINT_RUNBOOK_BASE`), which rewrites it in
`alerts/pgmaint.rules.yml` and the generated PrometheusRule. The default,
`http://localhost:9188/runbook`, is this page as the exporter serves it (`/runbook`, compiled into the
binary) at its default address: it opens for the docker-compose demo and a local exporter, and on
Kubernetes after `kubectl port-forward svc/pgmaint-exporter 9188`. To link to your own copy (a wiki, the
exporter's Service name), run `PGMAINT_RUNBOOK_BASE=https://… scripts/gen-prometheusrule.sh`.''')

replace_section('PgmaintExporterDown', '''## PgmaintExporterDown

**Meaning.** Prometheus' own `up` is 0 for 5 minutes for a target that exported `pg_up` in the last day:
the exporter process is down, unreachable or times out. The job name does not matter (the shipped configs
use `pgmaint`, `postgres`, `postgres-metrics` from the ServiceMonitor and `postgres-fleet` from the Probe);
a target counts as an exporter of ours by its history. No other alert of that target can fire,
`PostgresDown` included, so this one pages. A target that is removed from service discovery altogether has
no `up` either: see [PgmaintExporterVanished](#pgmaintexportervanished).

**Confirm.**

```sh
curl -sS -m 10 http://exporter-host:9188/healthz
curl -sS -m 10 http://exporter-host:9188/metrics | head
systemctl status pgmaint-exporter    # or: docker logs / kubectl logs
```

Prometheus' *Targets* page shows the scrape error.

**Act.** Restart the exporter and read its log. If scrapes time out, see
[PgmaintScrapeSlow](#pgmaintscrapeslow).

**Tune.** `for: 5m`, `keep_firing_for: 5m` (one scrape that gets through does not resolve and re-page).
A brand-new exporter that never answered is not covered (it has no `pg_up` history); Prometheus' *Targets*
page shows it.''')

insert_after('PgmaintExporterDown', '''## PgmaintExporterVanished

**Meaning.** A job had targets that exported `pg_up` in the last day, and now has no target at all: its
pods, Service, ServiceMonitor, Probe or file_sd entries are gone, so there is no `up` series for
[PgmaintExporterDown](#pgmaintexporterdown) to look at. It is evaluated per job, not per instance: on
Kubernetes a replaced pod gets a new address, and the old instance disappearing is normal.

**Confirm.** Prometheus' *Targets* and *Service discovery* pages for the job; `kubectl get
servicemonitor,probe,svc,pods -A -l app.kubernetes.io/name=pgmaint-exporter`.

**Act.** Restore the scrape config or the resources. If the job was retired on purpose, silence the alert
for a day (`amtool silence add alertname=PgmaintExporterVanished job=…`); it clears by itself once the
day of `pg_up` history has passed.

**Tune.** `[1d]` is how long a job is remembered; `for: 10m`.''')

rep('''**Tune.** `for: 15m`. Alerts are suppressed while `pg_up == 0` (the `unless` clause).''','''**Tune.** `for: 15m`. Alerts are suppressed while `pg_up == 0` (the `unless` clause). The collectors that
feed critical alerts are left out here: they have their own, critical, alert
([PgmaintCriticalCollectorFailing](#pgmaintcriticalcollectorfailing)).''')

insert_after('PgmaintCollectorFailing', '''## PgmaintCriticalCollectorFailing

**Meaning.** A collector that feeds a critical alert has failed every scrape for 10 minutes while
PostgreSQL is up: `activity` (connections exhausted), `database` (XID and MultiXact wraparound, checksum
failures), `sequences` (integer key overflow), `archiver` and `settings` (WAL archiving stalled),
`replication` and `wal_receiver` (standby and fleet checks), `backup` and `wal_archive` (backups, archive
gaps). While it fails, those alerts cannot fire, and a firing one would resolve once its
`keep_firing_for` runs out.

**Confirm and act.** As for [PgmaintCollectorFailing](#pgmaintcollectorfailing): the exporter log names
the cause (privileges, timeouts, an unreadable directory).

**Tune.** `for: 10m`. The collector list is in the rule (and, inverted, in `PgmaintCollectorFailing`).

## PgmaintExporterRoleUnprivileged

**Meaning.** The role the exporter connects with is neither superuser nor a member of `pg_monitor`.
PostgreSQL then hides other roles' session state, query start, wait events and `backend_xmin`, the WAL
receiver's status and `pg_ls_waldir()`: the idle-in-transaction, long-query, lock-wait, lock-queue,
xmin-horizon, standby-streaming and WAL-directory alerts go silent without any collector failing.

**Confirm.**

```sql
SELECT rolname, rolsuper, pg_has_role(rolname, 'pg_monitor', 'member') AS pg_monitor
  FROM pg_roles WHERE rolname = 'pgmaint';   -- the exporter's role
```

**Act.** `GRANT pg_monitor TO pgmaint;` (takes effect on the exporter's next connection).

**Tune.** `for: 10m`, `keep_firing_for: 10m`.

## PgmaintTablesOmitted

**Meaning.** `pgmaint_exporter_tables_omitted > 0` for an hour: tables passed the schema/table filters
but got no series because of `PGMAINT_MAX_TABLES_PER_DATABASE`. No table alert (vacuum, analyze, bloat,
XID age per table) can fire for them.

**Confirm.** The report lists the tables with series; `SELECT count(*) FROM pg_stat_user_tables` shows
how many there are.

**Act.** Raise `PGMAINT_MAX_TABLES_PER_DATABASE`, or exclude schemas you do not care about so the cap
covers the rest (see [configuration.md](configuration.md)).

**Tune.** `for: 1h`.''')

insert_after('PostgresLockWaitLong', '''## PostgresLockQueuePileUp

**Meaning.** More than 10 sessions of one database have waited for heavyweight locks for 2 minutes. The
classic cause is a DDL statement (`ALTER TABLE`, `CREATE INDEX` without `CONCURRENTLY`) queued behind a
long transaction: every later query on the table queues behind the DDL, and the application stalls long
before any single wait reaches [PostgresLockWaitLong](#postgreslockwaitlong).

**Confirm.**

```sql
SELECT pid, pg_blocking_pids(pid) AS blocked_by, wait_event_type, state,
       now() - xact_start AS xact_age, left(query, 80)
  FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0;
```

**Act.** Find the head of the queue (a pid that blocks others and waits for nothing) and end it:
`SELECT pg_cancel_backend(pid)`, or `pg_terminate_backend(pid)` for an idle transaction. Run DDL with a
`lock_timeout`.

**Tune.** `> 10` sessions, `for: 2m`.

## PostgresDeadlocks

**Meaning.** PostgreSQL detected a deadlock in the database in the last 15 minutes and aborted one of the
transactions (`pg_stat_database.deadlocks` grew). It is a warning: the application got an error, retried
or not, and the access order of its transactions should be fixed.

**Confirm.** The server log has `ERROR: deadlock detected` with both statements (`log_lock_waits = on`
adds the waits that preceded it).

```sql
SELECT datname, deadlocks FROM pg_stat_database WHERE datname = 'app';
```

**Act.** Make the transactions take their locks in one order (e.g. update rows sorted by key), keep them
short, or lock explicitly up front (`SELECT … FOR UPDATE` in key order).

**Tune.** `[15m]`, no `for:`: the counter only grows, so the alert resolves 15 minutes after the last
deadlock. For a busy application with known occasional deadlocks, raise `> 0` to a rate.''')

replace_section('PostgresTableAutovacuumDisabled', None) if False else None
a,b=section('PostgresTableAutovacuumDisabled')
blk=s[a:b]
blk=re.sub(r'for: 1d', 'for: 2h', blk)
blk=blk.replace('for a day', 'for two hours')
s=s[:a]+blk+s[b:]

replace_section('PostgresTableNotVacuumed', '''## PostgresTableNotVacuumed

**Meaning.** The newest of `last_vacuum` and `last_autovacuum` is more than 7 days old while the table is
past one of its own autovacuum trigger points: dead tuples above the vacuum trigger, or rows inserted
since the last vacuum above the insert trigger (see [metrics.md](metrics.md#autovacuum-trigger-points)).
Autovacuum should have come and did not. A big table whose changes stay below its trigger point is
handled exactly as designed and stays silent, however long ago its last vacuum was.

**Confirm.**

```sql
SELECT relname, n_dead_tup, n_ins_since_vacuum, last_vacuum, last_autovacuum
  FROM pg_stat_user_tables WHERE relname = 'orders';
```

**Act.** See whether autovacuum workers are all busy
([PostgresAutovacuumWorkersSaturated](#postgresautovacuumworkerssaturated)), whether its vacuums are
cancelled (the server log, lock conflicts with long transactions) or whether it is disabled for the table
([PostgresTableAutovacuumDisabled](#postgrestableautovacuumdisabled)). Run `VACUUM (VERBOSE) orders;`.

**Tune.** `7 * 86400` (seconds). The timestamps carry the duration, so `for: 30m` is enough and a gap in
the samples (exporter restart, table briefly over the cap) does not restart a long wait.''')

replace_section('PostgresTableNotAnalyzed', '''## PostgresTableNotAnalyzed

**Meaning.** The newest of `last_analyze` and `last_autoanalyze` is more than 7 days old while more rows
changed since than the table's autoanalyze trigger point: autoanalyze should have come and did not, and
the planner works with old statistics. Tables whose changes stay below the trigger are silent.

**Confirm.**

```sql
SELECT relname, n_mod_since_analyze, last_analyze, last_autoanalyze
  FROM pg_stat_user_tables WHERE relname = 'orders';
```

**Act.** `ANALYZE orders;` and look for the same causes as in
[PostgresTableNotVacuumed](#postgrestablenotvacuumed).

**Tune.** `7 * 86400` (seconds), `for: 30m` (the timestamps carry the duration).''')

a,b=section('PostgresUnusedIndex')
blk=s[a:b]
print(blk)
open(p,'w').write(s)
