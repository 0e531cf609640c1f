package ingest

// SetDocumentHook makes cfg call f before each document is mapped (tests: a panic in f
// stands for a defect in the mapping of that document).
func SetDocumentHook(cfg *Config, f func(pos string)) { cfg.onDocument = f }

// SetAppenderOnly makes cfg stage every row through DuckDB's appender, as ingest did before
// the mapping workers staged bookings as Parquet, and sets *staged to the number of rows
// a run staged as Parquet (0 then).
func SetAppenderOnly(cfg *Config, staged *int64) { cfg.appenderOnly, cfg.stagedRows = true, staged }

// CountStaged sets *staged to the number of rows a run of cfg stages as Parquet.
func CountStaged(cfg *Config, staged *int64) { cfg.stagedRows = staged }

// SetPatientEntries makes a run of cfg hold at most n NDJSON Patients in memory per index,
// the rest on disk.
func SetPatientEntries(cfg *Config, n int) { cfg.patientEntries = n }

// SetPidRanges makes a run of cfg write every table in n pid ranges.
func SetPidRanges(cfg *Config, n int) { cfg.pidRanges = n }

// PidRanges are finalize's predicates of n pid ranges.
var PidRanges = pidRanges
