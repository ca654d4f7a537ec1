//! `indexes` against real indexes: never used, used, primary key, duplicate,
//! and one left invalid by a failed CREATE INDEX CONCURRENTLY.

use crate::harness;

#[tokio::test]
async fn unused_duplicate_and_invalid_indexes() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE t (id int PRIMARY KEY, a int, b int, c int, d int);
         INSERT INTO t SELECT g, g, g, g, g FROM generate_series(1, 1000) g;
         CREATE INDEX t_a_never ON t (a);
         CREATE INDEX t_b_used ON t (b);
         CREATE INDEX t_d_first ON t (d);
         CREATE INDEX t_d_again ON t (d);
         CREATE INDEX t_c_plain ON t (c);
         CREATE UNIQUE INDEX t_c_unique ON t (c);
         CREATE TABLE u (x int);
         INSERT INTO u VALUES (1), (1);",
    )
    .await;
    // CONCURRENTLY cannot run in a transaction block: its own batch. The
    // unique violation leaves the index behind, invalid.
    let failed = db
        .client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY u_x ON u (x)")
        .await;
    assert!(failed.is_err(), "duplicate keys must fail the unique index");
    db.batch(
        "SET enable_seqscan = off; SET enable_bitmapscan = off;
         SELECT * FROM t WHERE b = 5;
         SELECT pg_stat_force_next_flush();",
    )
    .await;

    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let v =
        |name: &str, index: &str| m.value(name, &[("datname", db.name.as_str()), ("indexrelname", index)]);
    assert_eq!(v("pg_index_scans_total", "t_b_used"), Some(1.0));
    assert_eq!(v("pg_index_tuples_read_total", "t_b_used"), Some(1.0));
    assert_eq!(v("pg_index_tuples_fetched_total", "t_b_used"), Some(1.0));
    assert_eq!(v("pg_index_unused", "t_b_used"), Some(0.0));
    assert_eq!(v("pg_index_unused", "t_a_never"), Some(1.0));
    // Never scanned, but it enforces the key: not "unused".
    assert_eq!(v("pg_index_scans_total", "t_pkey"), Some(0.0));
    assert_eq!(v("pg_index_unused", "t_pkey"), Some(0.0));
    assert_eq!(v("pg_index_unused", "t_c_unique"), Some(0.0));

    // Twins: the older one is kept. A plain index beside an identical unique
    // one is the duplicate even though it is older.
    assert_eq!(v("pg_index_duplicate", "t_d_first"), Some(0.0));
    assert_eq!(v("pg_index_duplicate", "t_d_again"), Some(1.0));
    assert_eq!(v("pg_index_duplicate", "t_c_plain"), Some(1.0));
    assert_eq!(v("pg_index_duplicate", "t_c_unique"), Some(0.0));
    assert_eq!(v("pg_index_duplicate", "t_a_never"), Some(0.0));

    assert_eq!(v("pg_index_invalid", "u_x"), Some(1.0));
    assert_eq!(v("pg_index_invalid", "t_b_used"), Some(0.0));
    let size = db.scalar_f64("SELECT pg_relation_size('t_b_used')::float8").await;
    assert_eq!(v("pg_index_size_bytes", "t_b_used"), Some(size));
    assert!(size > 8192.0);
    assert_eq!(
        m.find("pg_index_unused", &[("datname", db.name.as_str())])
            .count(),
        8
    );
    assert_eq!(harness::promtool_check(&m.raw), "");
}

#[tokio::test]
async fn stats_reset_time_is_published() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE TABLE t (id int PRIMARY KEY)").await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let reset = |m: &harness::Samples| {
        m.value(
            "pg_index_stats_reset_timestamp_seconds",
            &[("datname", db.name.as_str())],
        )
    };
    let m = exporter.scrape().await;
    assert_eq!(reset(&m), None, "a new database's statistics were never reset");
    let before = db.scalar_f64("SELECT extract(epoch FROM now())::float8").await;
    db.batch("SELECT pg_stat_reset()").await;
    let m = exporter.scrape().await;
    let at = reset(&m).expect("stats_reset after pg_stat_reset()");
    assert!((before..before + 60.0).contains(&at), "{at} vs {before}");
}

/// The reset time rides on the index query (one statement per database): a
/// database without any index still gets it, and no index series.
#[tokio::test]
async fn stats_reset_time_is_published_without_any_index() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch("CREATE TABLE t (id int); SELECT pg_stat_reset()").await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let d = [("datname", db.name.as_str())];
    assert_eq!(
        m.value(
            "pg_scrape_collector_success",
            &[("collector", "indexes"), ("datname", db.name.as_str())]
        ),
        Some(1.0)
    );
    assert!(
        m.value("pg_index_stats_reset_timestamp_seconds", &d).is_some(),
        "stats_reset after pg_stat_reset() in a database without indexes"
    );
    assert_eq!(m.find("pg_index_scans_total", &d).count(), 0);
    assert_eq!(m.find("pg_index_unused", &d).count(), 0);
}

/// The report's `qualified()` against the server's own `quote_ident()`: every
/// key word the server knows, and names that trip naive quoting.
#[tokio::test]
async fn report_identifiers_are_quoted_like_quote_ident() {
    use pgmaint_exporter::report::findings::qualified;
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let mut names: Vec<String> = [
        "select",
        "user",
        "Select",
        "USER",
        "t",
        "users",
        "index",
        "between",
        "json_table",
        "system_user",
        "merge_action",
        "a b",
        "a\"b",
        "\"",
        "it's",
        "é",
        "naïve",
        "日本",
        "1abc",
        "_x1",
        "a$b",
        "a-b",
        "",
        " ",
        "public",
        "pg_catalog",
        "x".repeat(63).as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let keywords = db
        .client
        .query("SELECT word FROM pg_get_keywords()", &[])
        .await
        .unwrap();
    assert!(
        keywords.len() > 400,
        "pg_get_keywords() returned {}",
        keywords.len()
    );
    names.extend(keywords.iter().map(|r| r.get::<_, String>(0)));
    let mut checked = 0;
    for schema in &names {
        let server: String = db
            .client
            .query_one(
                "SELECT quote_ident($1) || '.' || quote_ident($2)",
                &[schema, &"t"],
            )
            .await
            .unwrap()
            .get(0);
        let ours = qualified(schema, "t");
        // Words only a newer server (16, 17) reserves are quoted for every
        // server: harmless on this one, and checked to parse below.
        let newer = [
            "system_user",
            "json",
            "json_array",
            "json_arrayagg",
            "json_object",
            "json_objectagg",
            "json_exists",
            "json_query",
            "json_scalar",
            "json_serialize",
            "json_table",
            "json_value",
            "merge_action",
        ];
        if ours != server && newer.contains(&schema.as_str()) {
            assert_eq!(ours, format!("\"{schema}\".t"));
        } else {
            assert_eq!(ours, server, "schema {schema:?}");
        }
        checked += 1;
    }
    assert_eq!(checked, names.len());
    // And the result parses: a schema named select with a table named user.
    db.batch("CREATE SCHEMA \"select\"; CREATE TABLE \"select\".\"user\" (id int)")
        .await;
    let name = qualified("select", "user");
    assert_eq!(name, "\"select\".\"user\"");
    db.batch(&format!("VACUUM (ANALYZE) {name}")).await;
}

/// `/report.json` for one database.
async fn report(exporter: &harness::Exporter, db: &str) -> serde_json::Value {
    let (status, body) = exporter.get(&format!("/report.json?datname={db}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The findings of `kind` about index `index`.
fn findings_for(r: &serde_json::Value, kind: &str, index: &str) -> Vec<serde_json::Value> {
    r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == kind && f["object"]["indexrelname"] == index)
        .cloned()
        .collect()
}

fn commands(f: &serde_json::Value) -> Vec<String> {
    f["fix"]
        .as_array()
        .expect("fix")
        .iter()
        .map(|c| c["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Every SQL command of every finding, in report order.
fn all_commands(r: &serde_json::Value) -> Vec<String> {
    r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .flat_map(commands)
        .collect()
}

/// Duplicates must be interchangeable: different exclusion operators, a
/// DEFERRABLE constraint beside a plain unique index are not; of two that
/// are, the one a constraint or a foreign key needs is kept, and the report
/// never suggests dropping a constraint.
#[tokio::test]
async fn duplicates_must_enforce_the_same_rule() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE booking (r int4range,
           CONSTRAINT booking_overlap EXCLUDE USING gist (r WITH &&),
           CONSTRAINT booking_adjacent EXCLUDE USING gist (r WITH -|-));
         CREATE TABLE acct (a int, CONSTRAINT acct_a_deferrable UNIQUE (a) DEFERRABLE);
         CREATE UNIQUE INDEX acct_a_plain ON acct (a);
         CREATE TABLE item (a int, CONSTRAINT item_a_key UNIQUE (a));
         CREATE UNIQUE INDEX item_a_plain ON item (a);
         CREATE TABLE k (a int);
         CREATE UNIQUE INDEX k_a_first ON k (a);
         CREATE TABLE kr (a int REFERENCES k (a));
         ALTER TABLE k ADD CONSTRAINT k_a_key UNIQUE (a);
         CREATE INDEX k_a_plain ON k (a);",
    )
    .await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let dup = |index: &str| {
        m.value(
            "pg_index_duplicate",
            &[("datname", db.name.as_str()), ("indexrelname", index)],
        )
    };
    assert_eq!(dup("booking_overlap"), Some(0.0));
    assert_eq!(dup("booking_adjacent"), Some(0.0));
    assert_eq!(dup("acct_a_deferrable"), Some(0.0));
    assert_eq!(
        dup("acct_a_plain"),
        Some(0.0),
        "foreign keys need the non-deferrable one"
    );
    assert_eq!(dup("item_a_key"), Some(0.0), "the constraint's index is kept");
    assert_eq!(dup("item_a_plain"), Some(1.0));
    assert_eq!(dup("k_a_first"), Some(0.0), "the foreign key depends on it");
    assert_eq!(dup("k_a_key"), Some(1.0));
    assert_eq!(
        dup("k_a_plain"),
        Some(1.0),
        "a plain index gives way to a unique one"
    );

    let r = report(&exporter, &db.name).await;
    let item = findings_for(&r, "duplicate_index", "item_a_plain");
    assert_eq!(
        commands(&item[0]),
        ["DROP INDEX CONCURRENTLY public.item_a_plain;"]
    );
    let k_key = findings_for(&r, "duplicate_index", "k_a_key");
    assert_eq!(k_key.len(), 1, "{r}");
    assert!(commands(&k_key[0]).is_empty(), "{}", k_key[0]);
    assert!(
        k_key[0]["title"].as_str().unwrap().contains("keep k_a_first"),
        "{}",
        k_key[0]
    );
    assert_eq!(
        commands(&findings_for(&r, "duplicate_index", "k_a_plain")[0]),
        ["DROP INDEX CONCURRENTLY public.k_a_plain;"]
    );
    for c in all_commands(&r) {
        assert!(!c.contains("DROP CONSTRAINT"), "{c}");
    }
    // Each suggested DROP runs, and the rules stay enforced.
    for c in all_commands(&r).iter().filter(|c| c.starts_with("DROP INDEX")) {
        db.client
            .batch_execute(c)
            .await
            .unwrap_or_else(|e| panic!("{c}: {e}"));
    }
    db.batch("INSERT INTO k VALUES (1); INSERT INTO kr VALUES (1); INSERT INTO item VALUES (1);")
        .await;
    assert!(db
        .client
        .batch_execute("INSERT INTO item VALUES (1)")
        .await
        .is_err());
}

/// An index on a foreign key's referencing columns is marked, kept out of
/// the DROP suggestions, and the report says why.
#[tokio::test]
async fn foreign_key_indexes_are_marked_and_never_offered_for_dropping() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE parent (id int PRIMARY KEY, a int, b int, UNIQUE (a, b));
         CREATE TABLE child (id int, pid int REFERENCES parent, a int, b int,
                             FOREIGN KEY (b, a) REFERENCES parent (a, b));
         CREATE INDEX child_pid ON child (pid);
         CREATE INDEX child_a_b_id ON child (a, b, id);
         CREATE INDEX child_id_pid ON child (id, pid);
         CREATE INDEX child_pid_partial ON child (pid) WHERE id > 0;
         -- Rows enough for each index to pass the report's 1 MiB floor for
         -- info-level unused indexes.
         -- Distinct keys: B-tree deduplication would shrink repeated ones.
         INSERT INTO parent SELECT g, g, g FROM generate_series(1, 100000) g;
         INSERT INTO child SELECT g, g, g, g FROM generate_series(1, 100000) g;",
    )
    .await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let v =
        |name: &str, index: &str| m.value(name, &[("datname", db.name.as_str()), ("indexrelname", index)]);
    let fk = |index: &str| v("pg_index_supports_foreign_key", index);
    assert_eq!(fk("child_pid"), Some(1.0));
    assert_eq!(fk("child_a_b_id"), Some(1.0), "leading columns in any order");
    assert_eq!(fk("child_id_pid"), Some(0.0), "the key is not leading");
    assert_eq!(fk("child_pid_partial"), Some(0.0), "partial: not every row");
    assert_eq!(fk("parent_pkey"), Some(0.0));
    // Still never scanned: the alert rule leaves it out (alerts/tests).
    assert_eq!(v("pg_index_unused", "child_pid"), Some(1.0));

    let r = report(&exporter, &db.name).await;
    for index in ["child_pid", "child_a_b_id"] {
        let f = findings_for(&r, "unused_index", index);
        assert_eq!(f.len(), 1, "{r}");
        assert!(commands(&f[0]).is_empty(), "{}", f[0]);
        assert_eq!(f[0]["severity"], "info");
        assert!(
            f[0]["title"].as_str().unwrap().contains("foreign key"),
            "{}",
            f[0]
        );
    }
    let other = findings_for(&r, "unused_index", "child_id_pid");
    assert_eq!(
        commands(&other[0]),
        ["DROP INDEX CONCURRENTLY public.child_id_pid;"]
    );
    assert_eq!(harness::promtool_check(&m.raw), "");
}

/// Partition indexes are judged at their root partitioned index, and every
/// suggested command is one PostgreSQL accepts (run here).
#[tokio::test]
async fn partition_indexes_are_reported_at_the_parent() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE ev (id int, k int, note text, at date) PARTITION BY RANGE (at);
         CREATE TABLE ev_2020 PARTITION OF ev FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
         CREATE TABLE ev_2021 PARTITION OF ev FOR VALUES FROM ('2021-01-01') TO ('2022-01-01')
           PARTITION BY HASH (id);
         CREATE TABLE ev_2021_a PARTITION OF ev_2021 FOR VALUES WITH (modulus 2, remainder 0);
         CREATE TABLE ev_2021_b PARTITION OF ev_2021 FOR VALUES WITH (modulus 2, remainder 1);
         INSERT INTO ev SELECT g, g % 10, 'n' || g, date '2020-06-01' + g % 500 FROM generate_series(1, 2000) g;
         CREATE INDEX ev_k ON ev (k);
         CREATE INDEX ev_k_again ON ev (k);
         CREATE INDEX ev_note ON ev (note);
         CREATE INDEX ev_id_only ON ONLY ev (id);
         ANALYZE ev;
         SET enable_seqscan = off; SET enable_bitmapscan = off;
         SELECT count(*) FROM ev_2020 WHERE k = 3;
         RESET enable_seqscan; RESET enable_bitmapscan;
         SELECT pg_stat_force_next_flush();",
    )
    .await;
    // Which index the planner used does not matter: ev_k and ev_k_again
    // are twins, so one of them was scanned on ev_2020.
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let v =
        |name: &str, index: &str| m.value(name, &[("datname", db.name.as_str()), ("indexrelname", index)]);
    // The partitioned indexes carry the verdicts...
    assert_eq!(v("pg_index_unused", "ev_note"), Some(1.0));
    assert_eq!(v("pg_index_duplicate", "ev_k_again"), Some(1.0));
    assert_eq!(v("pg_index_duplicate", "ev_k"), Some(0.0));
    assert_eq!(v("pg_index_invalid", "ev_k"), Some(0.0));
    assert_eq!(
        v("pg_index_scans_total", "ev_note"),
        None,
        "no statistics of its own"
    );
    // ...the attached ones none: they cannot be dropped on their own.
    let in_db = [("datname", db.name.as_str())];
    let leaves: Vec<_> = m
        .find("pg_index_unused", &in_db)
        .filter(|s| s.labels.get("relname").is_some_and(|t| t.starts_with("ev_")))
        .collect();
    assert_eq!(leaves.len(), 9, "three indexes on three leaf partitions");
    assert!(leaves.iter().all(|s| s.value == 0.0));
    for s in m.find("pg_index_duplicate", &in_db) {
        if s.labels.get("relname").is_some_and(|t| t.starts_with("ev_")) {
            assert_eq!(s.value, 0.0, "{:?}", s.labels);
        }
    }
    assert!(v("pg_index_scans_total", "ev_2020_note_idx").is_some());
    // ON ONLY: invalid until every partition has an index attached.
    assert_eq!(v("pg_index_invalid", "ev_id_only"), Some(1.0));
    assert_eq!(
        v("pg_index_unused", "ev_id_only"),
        Some(0.0),
        "nothing to judge yet"
    );

    let r = report(&exporter, &db.name).await;
    let unused = findings_for(&r, "unused_index", "ev_note");
    assert_eq!(
        commands(&unused[0]),
        ["SET lock_timeout = '5s'; DROP INDEX public.ev_note;"]
    );
    let dup = findings_for(&r, "duplicate_index", "ev_k_again");
    assert_eq!(
        commands(&dup[0]),
        ["SET lock_timeout = '5s'; DROP INDEX public.ev_k_again;"]
    );
    let only = findings_for(&r, "invalid_index", "ev_id_only");
    let query = &commands(&only[0])[0];
    let missing = db
        .client
        .query(query.as_str(), &[])
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    assert_eq!(
        missing.len(),
        2,
        "ev_2020 and ev_2021 have no index attached to ev_id_only"
    );
    let cmds = all_commands(&r);
    assert!(
        !cmds
            .iter()
            .any(|c| c.contains("CONCURRENTLY") && c.contains("ev")),
        "{cmds:?}"
    );
    for c in cmds.iter().filter(|c| c.contains("DROP INDEX")) {
        db.client
            .batch_execute(c)
            .await
            .unwrap_or_else(|e| panic!("{c}: {e}"));
    }
    let left = db
        .scalar_f64("SELECT count(*)::float8 FROM pg_indexes WHERE tablename LIKE 'ev%'")
        .await;
    assert_eq!(
        left, 6.0,
        "ev_k, ev_2021's partitioned index under it, the three leaves' and ev_id_only stay"
    );
}

/// A failed unique CREATE INDEX CONCURRENTLY leaves an index writes do not
/// maintain (indisready false); a failed REINDEX CONCURRENTLY leaves a
/// `_ccnew` copy to drop, not to reindex.
#[tokio::test]
async fn failed_concurrent_builds_are_told_apart() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE u (x int); INSERT INTO u VALUES (1), (1);
         CREATE TABLE w (x int); INSERT INTO w VALUES (1), (2);
         CREATE FUNCTION f(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS
           $$ BEGIN IF current_setting('pgmaint.fail', true) = '1' THEN RAISE 'boom'; END IF; RETURN $1; END $$;
         CREATE INDEX w_f ON w (f(x));",
    )
    .await;
    let failed = db
        .client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY u_x ON u (x)")
        .await;
    assert!(failed.is_err(), "duplicate keys must fail the unique index");
    // Its own statement: a multi-statement batch is a transaction block,
    // which REINDEX CONCURRENTLY refuses before doing anything.
    db.client.batch_execute("SET pgmaint.fail = '1'").await.unwrap();
    let failed = db.client.batch_execute("REINDEX INDEX CONCURRENTLY w_f").await;
    let err = failed.expect_err("the index expression fails the rebuild");
    assert!(format!("{err:?}").contains("boom"), "{err:?}");
    db.client.batch_execute("RESET pgmaint.fail").await.unwrap();

    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    let v =
        |name: &str, index: &str| m.value(name, &[("datname", db.name.as_str()), ("indexrelname", index)]);
    assert_eq!(v("pg_index_invalid", "u_x"), Some(1.0));
    assert_eq!(v("pg_index_ready", "u_x"), Some(0.0), "writes do not maintain it");
    assert_eq!(v("pg_index_invalid", "w_f"), Some(0.0));
    assert_eq!(v("pg_index_ready", "w_f"), Some(1.0));
    assert_eq!(v("pg_index_invalid", "w_f_ccnew"), Some(1.0));

    let r = report(&exporter, &db.name).await;
    let u = &findings_for(&r, "invalid_index", "u_x")[0];
    let why = u["why"].as_str().unwrap();
    assert!(why.contains("writes do not maintain it"), "{u}");
    assert!(!why.contains("still maintains"), "{u}");
    let cc = &findings_for(&r, "invalid_index", "w_f_ccnew")[0];
    assert_eq!(
        commands(cc),
        [
            "DROP INDEX CONCURRENTLY public.w_f_ccnew;",
            "SET lock_timeout = '5s';",
            "REINDEX INDEX CONCURRENTLY public.w_f;"
        ]
    );
    for c in commands(cc) {
        db.client
            .batch_execute(&c)
            .await
            .unwrap_or_else(|e| panic!("{c}: {e}"));
    }
    let invalid = db
        .scalar_f64("SELECT count(*)::float8 FROM pg_index WHERE indrelid = 'w'::regclass AND NOT indisvalid")
        .await;
    assert_eq!(invalid, 0.0);
}

/// Issue 19 item 12, on the demo's data (scripts/demo.sh): the duplicate
/// and the never-scanned index it duplicates give one plan. Running every
/// DROP the report suggests leaves a copy of every index definition.
#[tokio::test]
async fn demo_findings_never_drop_every_copy() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL,
           created_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE meetings (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
           owner_id bigint REFERENCES users, title text, starts_at timestamptz,
           created_at timestamptz NOT NULL DEFAULT now()) WITH (autovacuum_enabled = off);
         INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 2000) g;
         INSERT INTO meetings (owner_id, title, starts_at)
           SELECT 1 + g % 2000, 'Meeting ' || g, now() + g * interval '1 hour' FROM generate_series(1, 50000) g;
         CREATE INDEX meetings_title_idx ON meetings (title);
         CREATE INDEX meetings_title_idx2 ON meetings (title);
         ANALYZE;
         DELETE FROM meetings WHERE id % 4 = 0;",
    )
    .await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let r = report(&exporter, &db.name).await;
    let dup = findings_for(&r, "duplicate_index", "meetings_title_idx2");
    assert_eq!(
        commands(&dup[0]),
        ["DROP INDEX CONCURRENTLY public.meetings_title_idx2;"]
    );
    let kept = findings_for(&r, "unused_index", "meetings_title_idx");
    assert_eq!(kept.len(), 1, "{r}");
    assert!(commands(&kept[0]).is_empty(), "{}", kept[0]);
    assert!(
        kept[0]["caution"]
            .as_str()
            .unwrap()
            .contains("public.meetings_title_idx2"),
        "{}",
        kept[0]
    );

    // Index definitions without their names, before and after every DROP.
    let shapes = "SELECT regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') FROM pg_indexes
                   WHERE schemaname = 'public' ORDER BY 1";
    let defs = |rows: Vec<tokio_postgres::Row>| {
        let mut v: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        v.dedup();
        v
    };
    let before = defs(db.client.query(shapes, &[]).await.unwrap());
    let drops: Vec<String> = all_commands(&r)
        .into_iter()
        .filter(|c| c.contains("DROP INDEX"))
        .collect();
    assert!(!drops.is_empty());
    for c in &drops {
        db.client
            .batch_execute(c)
            .await
            .unwrap_or_else(|e| panic!("{c}: {e}"));
    }
    let after = defs(db.client.query(shapes, &[]).await.unwrap());
    assert_eq!(before, after, "after {drops:?}");
}
