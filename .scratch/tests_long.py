import re
p='/work/wt/h18/alerts/tests/long.yml'
s=open(p).read()
RB='http://localhost:9188/runbook#'
def section(name):
    a=s.index('  - name: '+name+'\n')
    m=re.compile(r'^  - name: ', re.M).search(s, a+5)
    return a, (m.start() if m else len(s))
def repl(name, text):
    global s
    a,b=section(name)
    s=s[:a]+text.rstrip('\n')+'\n\n'+s[b:]

def ser(metric, rel, values, extra='', inst='db1:9188', db='app'):
    return f'''      - series: >-
          {metric}{{job="pgmaint",instance="{inst}",
          datname="{db}",schemaname="public",relname="{rel}"{extra}}}
        values: '{values}'
'''
def exp(rel, summary, desc, anchor, db='app', extra=''):
    return f'''          - exp_labels:
              severity: warning
              job: pgmaint
              instance: db1:9188
              datname: {db}
              schemaname: public
              relname: {rel}{extra}
            exp_annotations:
              summary: {summary}
              description: >-
{desc}
              runbook_url: {RB}{anchor}
              report: /report?datname={db}&relname={rel}
'''

# AutovacuumDisabled: for 2h
a,b=section('table past its trigger for a day with autovacuum off for it')
t=s[a:b]
t=t.replace('table past its trigger for a day with autovacuum off for it','table past its trigger for two hours with autovacuum off for it')
t=t.replace('      - eval_time: 23h\n        alertname: PostgresTableAutovacuumDisabled','      - eval_time: 1h\n        alertname: PostgresTableAutovacuumDisabled')
t=t.replace('''                app.public.staging on db1:9188 has 90k dead tuples, past its
                vacuum trigger point for a day, and autovacuum is disabled
                for it (reloption, autovacuum or track_counts off).''','''                app.public.staging on db1:9188 has 90k dead tuples, past its
                vacuum trigger point for two hours, and autovacuum is
                disabled for it (reloption, autovacuum or track_counts off).''')
# nightly: at 25h its dead tuples are 5000, below the trigger. Check at 3h too where nightly is 15000 > trigger
t=t.replace('''      - eval_time: 25h
        alertname: PostgresTableAutovacuumDisabled''','''      - eval_time: 25h
        alertname: PostgresTableAutovacuumDisabled''')
s=s[:a]+t+s[b:]

nv = ''.join([
 '  - name: tables past their own trigger and not vacuumed for 7 days\n',
 '    # The 7 days are in the timestamps, so a 6-hour gap in the samples\n',
 '    # (exporter down, table briefly over the cap) does not restart a wait.\n',
 '    interval: 1h\n    input_series:\n',
 '      # orders: only a manual VACUUM, at 100000 s; dead tuples pass the trigger.\n',
 ser('pg_table_last_vacuum_timestamp_seconds','orders','100000x100 _x6 100000x114'),
 ser('pg_table_dead_tuples','orders','0+100x100 _x6 10600+100x114'),
 ser('pg_table_autovacuum_vacuum_trigger_tuples','orders','10050x220'),
 '      # events: only autovacuum, insert-only, past its insert trigger.\n',
 ser('pg_table_last_autovacuum_timestamp_seconds','events','50000x220'),
 ser('pg_table_dead_tuples','events','0x220'),
 ser('pg_table_autovacuum_vacuum_trigger_tuples','events','10050x220'),
 ser('pg_table_inserted_since_vacuum_tuples','events','0+1000x220'),
 ser('pg_table_autovacuum_insert_trigger_tuples','events','51000x220'),
 '      # big: 50M rows, changing every hour, but far below its trigger\n',
 '      # points: autovacuum waits exactly as designed.\n',
 ser('pg_table_last_autovacuum_timestamp_seconds','big','50000x220'),
 ser('pg_table_dead_tuples','big','0+2000x220'),
 ser('pg_table_autovacuum_vacuum_trigger_tuples','big','10000050x220'),
 ser('pg_table_inserted_since_vacuum_tuples','big','0+1000x220'),
 ser('pg_table_autovacuum_insert_trigger_tuples','big','10001000x220'),
 '      # items: old autovacuum but a recent manual VACUUM.\n',
 ser('pg_table_last_autovacuum_timestamp_seconds','items','100000x220'),
 ser('pg_table_last_vacuum_timestamp_seconds','items','700000x220'),
 ser('pg_table_dead_tuples','items','0+100x220'),
 ser('pg_table_autovacuum_vacuum_trigger_tuples','items','10050x220'),
 '      # users: old manual VACUUM but a recent autovacuum.\n',
 ser('pg_table_last_autovacuum_timestamp_seconds','users','700000x220'),
 ser('pg_table_last_vacuum_timestamp_seconds','users','100000x220'),
 ser('pg_table_dead_tuples','users','0+100x220'),
 ser('pg_table_autovacuum_vacuum_trigger_tuples','users','10050x220'),
 '      # archive: vacuumed long ago, a few dead tuples, nothing changes.\n',
 ser('pg_table_last_autovacuum_timestamp_seconds','archive','100000x220'),
 ser('pg_table_dead_tuples','archive','300x220'),
 ser('pg_table_autovacuum_vacuum_trigger_tuples','archive','10050x220'),
 ser('pg_table_inserted_since_vacuum_tuples','archive','0x220'),
 ser('pg_table_autovacuum_insert_trigger_tuples','archive','51000x220'),
 '''    alert_rule_test:
      - eval_time: 7d
        alertname: PostgresTableNotVacuumed
        exp_alerts: []
      # time() = 777600 s.
      - eval_time: 9d
        alertname: PostgresTableNotVacuumed
        exp_alerts:
''',
 exp('orders','A table past its autovacuum trigger was not vacuumed for days','''                app.public.orders on db1:9188 was last vacuumed 7d 20h 13m
                20s ago although its dead or inserted tuples are past its
                autovacuum trigger point.''','postgrestablenotvacuumed'),
 exp('events','A table past its autovacuum trigger was not vacuumed for days','''                app.public.events on db1:9188 was last vacuumed 8d 10h 6m
                40s ago although its dead or inserted tuples are past its
                autovacuum trigger point.''','postgrestablenotvacuumed'),
])
repl('changing tables not vacuumed for 7 days', nv)

na = ''.join([
 '  - name: tables past their analyze trigger and not analyzed for 7 days\n',
 '    interval: 1h\n    input_series:\n',
 ser('pg_table_last_autoanalyze_timestamp_seconds','orders','100000x220'),
 ser('pg_table_modified_since_analyze_tuples','orders','0+50x220'),
 ser('pg_table_autovacuum_analyze_trigger_tuples','orders','5050x220'),
 '      # big: changing, far below its analyze trigger.\n',
 ser('pg_table_last_autoanalyze_timestamp_seconds','big','100000x220'),
 ser('pg_table_modified_since_analyze_tuples','big','0+5000x220'),
 ser('pg_table_autovacuum_analyze_trigger_tuples','big','5000050x220'),
 '      # items: old autoanalyze but a recent manual ANALYZE.\n',
 ser('pg_table_last_autoanalyze_timestamp_seconds','items','100000x220'),
 ser('pg_table_last_analyze_timestamp_seconds','items','700000x220'),
 ser('pg_table_modified_since_analyze_tuples','items','0+50x220'),
 ser('pg_table_autovacuum_analyze_trigger_tuples','items','5050x220'),
 '      # archive: analyzed long ago, unchanged since.\n',
 ser('pg_table_last_analyze_timestamp_seconds','archive','100000x220'),
 ser('pg_table_modified_since_analyze_tuples','archive','20x220'),
 ser('pg_table_autovacuum_analyze_trigger_tuples','archive','5050x220'),
 '''    alert_rule_test:
      - eval_time: 9d
        alertname: PostgresTableNotAnalyzed
        exp_alerts:
''',
 exp('orders','A table past its analyze trigger was not analyzed for days','''                app.public.orders on db1:9188 was last analyzed 7d 20h 13m
                20s ago although more rows changed since than its autoanalyze
                trigger point; the planner works with old statistics.''','postgrestablenotanalyzed'),
 '''      - eval_time: 8d
        alertname: PostgresTableNotAnalyzed
        exp_alerts: []
'''])
repl('changing tables not analyzed for 7 days', na)

IDX=',\n          indexrelname="%s"'
ui = ''.join([
 '  - name: large unused indexes for 7 days, per database, not on standbys\n',
 '    # orders_note_idx has a 6-hour gap in its samples (exporter restart):\n',
 '    # the 7 days are in the expression, so the gap restarts nothing.\n',
 '    interval: 1h\n    input_series:\n',
 ser('pg_index_size_bytes','orders','209715200x100 _x6 209715200x100', IDX % 'orders_note_idx'),
 ser('pg_index_unused','orders','1x100 _x6 1x100', IDX % 'orders_note_idx'),
 ser('pg_index_size_bytes','orders','209715200x210', IDX % 'orders_tag_idx'),
 ser('pg_index_unused','orders','1x210', IDX % 'orders_tag_idx'),
 '      # Small: 50 MiB.\n',
 ser('pg_index_size_bytes','orders','52428800x210', IDX % 'orders_small_idx'),
 ser('pg_index_unused','orders','1x210', IDX % 'orders_small_idx'),
 '      # Scanned once on day 3.\n',
 ser('pg_index_size_bytes','orders','209715200x210', IDX % 'orders_customer_idx'),
 ser('pg_index_unused','orders','1x72 0x138', IDX % 'orders_customer_idx'),
 '      # Created on day 4: too young to judge.\n',
 ser('pg_index_size_bytes','orders','_x96 209715200x114', IDX % 'orders_new_idx'),
 ser('pg_index_unused','orders','_x96 1x114', IDX % 'orders_new_idx'),
 '      # In a database whose statistics were reset at 500000 s (day 5.8).\n',
 ser('pg_index_size_bytes','runs','209715200x210', IDX % 'runs_note_idx', db='reports'),
 ser('pg_index_unused','runs','1x210', IDX % 'runs_note_idx', db='reports'),
 '''      - series: >-
          pg_index_stats_reset_timestamp_seconds{job="pgmaint",
          instance="db1:9188",datname="reports"}
        values: '500000x210'
      - series: 'pg_replication_in_recovery{job="pgmaint",instance="db1:9188"}'
        values: '0x210'
      # An idle standby: the same catalog, no scans at all there.
''',
 ser('pg_index_size_bytes','orders','209715200x210', IDX % 'orders_customer_idx', inst='db2:9188'),
 ser('pg_index_unused','orders','1x210', IDX % 'orders_customer_idx', inst='db2:9188'),
 '''      - series: 'pg_replication_in_recovery{job="pgmaint",instance="db2:9188"}'
        values: '1x210'
    alert_rule_test:
      - eval_time: 6d
        alertname: PostgresUnusedIndex
        exp_alerts: []
      - eval_time: 8d
        alertname: PostgresUnusedIndex
        exp_alerts:
          - exp_labels:
              severity: warning
              job: pgmaint
              instance: db1:9188
              datname: app
            exp_annotations:
              summary: Large indexes are never used
              description: >-
                Database app on db1:9188 has 2 index(es) over 100 MiB not
                scanned for at least 7 days; the report lists them with the
                DROP INDEX command.
              runbook_url: http://localhost:9188/runbook#postgresunusedindex
              report: /report?datname=app
'''])
repl('large unused index for 7 days, not after a statistics reset', ui)
open(p,'w').write(s)
