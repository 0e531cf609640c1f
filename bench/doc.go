// Package bench holds Velo's reproducible benchmarks. Each compares Velo with plain
// DuckDB doing the closest equivalent work on the same data, and reports ratios: speed
// and memory are measured here, never asserted as wall-clock limits in tests.
//
// go test -bench . ./bench runs the in-process benchmarks on small data;
// go run ./bench/cmd/ingestbench --persons 1000000 runs the ingest comparison at scale;
// go run ./bench/cmd/peerbench runs the query suite side by side with the DP peers.
package bench
