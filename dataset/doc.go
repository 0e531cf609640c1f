// Package dataset describes a Velo dataset as it lies on disk: the catalog (what may be
// asked of the data: tables, columns, public domains, clamping bounds, contribution
// bounds), the manifest (what went in, what came out, how the counts reconcile) and the
// layout of the data directory (docs/ingest.md#output), including DATA/.commit, which marks a dataset
// version whose commit by an ingest is unfinished (CheckCommitted).
//
// Package ingest writes a dataset; the query engine, the HTTP API and the CLI read it
// through this package, so none of them needs the ingest pipeline (or DuckDB) to know
// what a dataset is.
//
// Invariant: the description holds no value read from the data. Domains and bounds come
// from reference data, policy and the declared period; the manifest holds counts, hashes
// and masked paths. The package is pure apart from reading these two files and looking for
// DATA/.commit: no DuckDB, no network (a test holds `go list -deps` to that).
package dataset
