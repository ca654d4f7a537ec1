//! `sequences` against real sequences: ascending and descending ones set to a
//! known value, a never-called one, and integer key columns fed by identity,
//! serial and a plain DEFAULT nextval() of a bigint sequence.

use crate::harness;

const EPS: f64 = 1e-6;

fn close(got: Option<f64>, want: f64) -> bool {
    got.is_some_and(|g| (g - want).abs() < EPS)
}

#[tokio::test]
async fn sequence_and_column_ranges() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE SEQUENCE asc_s MINVALUE 0 MAXVALUE 1000;
         SELECT setval('asc_s', 750);
         CREATE SEQUENCE desc_s INCREMENT -1 MINVALUE -1000 MAXVALUE 0;
         SELECT setval('desc_s', -750);
         CREATE SEQUENCE unused_s;
         CREATE TABLE ident (id int4 GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
         SELECT setval(pg_get_serial_sequence('ident', 'id'), 1073741824);
         CREATE TABLE ser (id serial PRIMARY KEY);
         SELECT setval(pg_get_serial_sequence('ser', 'id'), 1073741824);
         CREATE TABLE bigser (id bigserial PRIMARY KEY);
         SELECT setval(pg_get_serial_sequence('bigser', 'id'), 4611686018427387904);
         -- The classic: a bigint sequence (CREATE SEQUENCE's default) feeding a
         -- smaller key through a plain DEFAULT, not owned by the column.
         CREATE SEQUENCE legacy_seq;
         CREATE TABLE legacy (id int2 DEFAULT nextval('legacy_seq') PRIMARY KEY);
         SELECT setval('legacy_seq', 16384);
         CREATE TABLE parted (id serial, k int) PARTITION BY RANGE (k);
         CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
         INSERT INTO parted (k) VALUES (1), (2);",
    )
    .await;
    let exporter = pg.spawn_exporter(&db.name, &[]).await;
    let m = exporter.scrape().await;
    assert_eq!(harness::promtool_check(&m.raw), "");
    let d = db.name.as_str();
    let seq = |name: &'static str| [("datname", d), ("schemaname", "public"), ("sequencename", name)];

    assert_eq!(m.value("pg_sequence_used_ratio", &seq("asc_s")), Some(0.75));
    assert_eq!(m.value("pg_sequence_last_value", &seq("asc_s")), Some(750.0));
    assert_eq!(m.value("pg_sequence_max_value", &seq("asc_s")), Some(1000.0));
    assert_eq!(m.value("pg_sequence_min_value", &seq("asc_s")), Some(0.0));
    assert_eq!(m.value("pg_sequence_used_ratio", &seq("desc_s")), Some(0.75));
    assert_eq!(m.value("pg_sequence_last_value", &seq("desc_s")), Some(-750.0));
    // Never called: nothing used, and no last value.
    assert_eq!(m.value("pg_sequence_used_ratio", &seq("unused_s")), Some(0.0));
    assert_eq!(m.value("pg_sequence_last_value", &seq("unused_s")), None);
    // serial makes an integer sequence: (2^30 - 1) / (2^31 - 2) is exactly 0.5.
    assert_eq!(m.value("pg_sequence_used_ratio", &seq("ser_id_seq")), Some(0.5));
    // The bigint sequence behind the smallint column has hardly started …
    let legacy_seq = m.value("pg_sequence_used_ratio", &seq("legacy_seq")).unwrap();
    assert!(legacy_seq < 1e-14, "{legacy_seq}");

    let col = |table: &'static str, column: &'static str, sequence: &'static str| {
        m.value(
            "pg_sequence_column_used_ratio",
            &[
                ("datname", d),
                ("schemaname", "public"),
                ("relname", table),
                ("attname", column),
                ("sequencename", sequence),
            ],
        )
    };
    let ident = col("ident", "id", "ident_id_seq");
    assert!(close(ident, 1073741824.0 / 2147483647.0), "{ident:?}");
    let ser = col("ser", "id", "ser_id_seq");
    assert!(close(ser, 1073741824.0 / 2147483647.0), "{ser:?}");
    let bigser = col("bigser", "id", "bigser_id_seq");
    assert!(close(bigser, 0.5), "{bigser:?}");
    // … but the column is half full: the column type's limit is what counts.
    let legacy = col("legacy", "id", "legacy_seq");
    assert!(close(legacy, 16384.0 / 32767.0), "{legacy:?}");
    // A partitioned table is reported once, through its parent.
    assert_eq!(col("parted", "id", "parted_id_seq"), Some(2.0 / 2147483647.0));
    assert_eq!(
        m.find(
            "pg_sequence_column_used_ratio",
            &[("datname", d), ("relname", "parted_1")]
        )
        .count(),
        0
    );
    // Sequences not feeding a column have no column series.
    assert_eq!(
        m.find(
            "pg_sequence_column_used_ratio",
            &[("datname", d), ("sequencename", "asc_s")]
        )
        .count(),
        0
    );
    assert_eq!(
        m.find("pg_sequence_column_used_ratio", &[("datname", d)]).count(),
        5
    );

    // Table filters drop column series, not the sequences themselves.
    drop(exporter);
    let m = pg
        .spawn_exporter(&db.name, &[("PGMAINT_EXCLUDE_TABLES", "public\\.ser|legacy")])
        .await
        .scrape()
        .await;
    let cols: Vec<String> = m
        .find("pg_sequence_column_used_ratio", &[("datname", d)])
        .map(|s| s.labels["relname"].clone())
        .collect();
    assert_eq!(cols, ["bigser", "ident", "parted"]);
    assert_eq!(m.value("pg_sequence_used_ratio", &seq("ser_id_seq")), Some(0.5));
}

#[tokio::test]
async fn unreadable_sequences_are_skipped() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    let role = format!("seqmon_{}", db.name);
    db.batch(&format!(
        "CREATE ROLE {role} LOGIN;
         CREATE SEQUENCE granted_s MINVALUE 0 MAXVALUE 100;
         SELECT setval('granted_s', 40);
         CREATE SEQUENCE hidden_s;
         SELECT setval('hidden_s', 5);
         CREATE TABLE t (id serial PRIMARY KEY);
         GRANT SELECT ON SEQUENCE granted_s TO {role};"
    ))
    .await;
    let url = format!("postgresql://{role}@127.0.0.1:{}/{}", pg.port, db.name);
    let exporter = pg
        .spawn_exporter(&db.name, &[("PGMAINT_DATABASE_URL", url.as_str())])
        .await;
    let m = exporter.scrape().await;
    drop(exporter);
    db.batch(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .await;

    let d = db.name.as_str();
    assert_eq!(
        m.value(
            "pg_scrape_collector_success",
            &[("collector", "sequences"), ("datname", d)]
        ),
        Some(1.0)
    );
    let seqs: Vec<String> = m
        .find("pg_sequence_used_ratio", &[("datname", d)])
        .map(|s| s.labels["sequencename"].clone())
        .collect();
    assert_eq!(seqs, ["granted_s"]);
    assert_eq!(
        m.value(
            "pg_sequence_used_ratio",
            &[("datname", d), ("sequencename", "granted_s")]
        ),
        Some(0.4)
    );
    assert_eq!(
        m.find("pg_sequence_column_used_ratio", &[("datname", d)]).count(),
        0
    );
}

/// `is_called = false` (after RESTART or setval(…, false)) makes
/// pg_sequence_last_value() NULL: the ratios must come from the sequence's
/// own last_value, not read as unused.
#[tokio::test]
async fn a_restarted_sequence_is_not_unused() {
    let pg = harness::cluster();
    let db = pg.fresh_db().await;
    db.batch(
        "CREATE TABLE near (id serial PRIMARY KEY);
         ALTER SEQUENCE near_id_seq RESTART WITH 2147000000;
         CREATE TABLE setv (id int4 GENERATED BY DEFAULT AS IDENTITY);
         SELECT setval(pg_get_serial_sequence('setv', 'id'), 30000, false);
         CREATE SEQUENCE fresh_s;
         CREATE SEQUENCE down_s INCREMENT -1 MINVALUE -100 MAXVALUE -1;
         ALTER SEQUENCE down_s RESTART WITH -91;",
    )
    .await;
    let m = pg.spawn_exporter(&db.name, &[]).await.scrape().await;
    let d = db.name.as_str();
    let seq = |name: &'static str| [("datname", d), ("schemaname", "public"), ("sequencename", name)];
    let col = |table: &'static str, sequence: &'static str| {
        m.value(
            "pg_sequence_column_used_ratio",
            &[("datname", d), ("relname", table), ("sequencename", sequence)],
        )
    };
    // The next value is 2147000000: everything below it counts as used.
    let near = col("near", "near_id_seq");
    assert!(close(near, 2146999999.0 / 2147483647.0), "{near:?}");
    let used = m.value("pg_sequence_used_ratio", &seq("near_id_seq"));
    assert!(close(used, 2146999998.0 / 2147483646.0), "{used:?}");
    // Still nothing handed out since the restart.
    assert_eq!(m.value("pg_sequence_last_value", &seq("near_id_seq")), None);
    let setv = col("setv", "setv_id_seq");
    assert!(close(setv, 29999.0 / 2147483647.0), "{setv:?}");
    // Never called: nothing used, exactly 0.
    assert_eq!(m.value("pg_sequence_used_ratio", &seq("fresh_s")), Some(0.0));
    // Descending from -1, restarted at -91: -1 … -90 are used, the mirror
    // of ascending: (max - (next - increment)) / (max - min).
    let down = m.value("pg_sequence_used_ratio", &seq("down_s"));
    assert!(close(down, (-1.0 - -90.0) / 99.0), "{down:?}");
}
