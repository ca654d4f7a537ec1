-- A demo database with states the exporter reports and the alerts react to
-- (the same scenario as scripts/demo.sh):
--   * meetings: autovacuum disabled, a quarter of its rows deleted → dead tuples
--     above the vacuum trigger that autovacuum will never clean;
--   * meetings_title_idx: never scanned → pg_index_unused 1;
--   * meetings_title_idx2: identical to meetings_title_idx → pg_index_duplicate 1.
-- Run once by the postgres image's entrypoint, on an empty data directory.
CREATE DATABASE meetings;
\connect meetings

CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE meetings (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id bigint REFERENCES users,
    title text,
    starts_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_enabled = off);

INSERT INTO users (email)
SELECT 'user' || g || '@example.com' FROM generate_series(1, 2000) AS g;
INSERT INTO meetings (owner_id, title, starts_at)
SELECT 1 + g % 2000, 'Meeting ' || g, now() + g * interval '1 hour'
FROM generate_series(1, 50000) AS g;

CREATE INDEX meetings_title_idx ON meetings (title);
CREATE INDEX meetings_title_idx2 ON meetings (title);
ANALYZE;
DELETE FROM meetings WHERE id % 4 = 0;
