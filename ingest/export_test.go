package ingest

// SetDocumentHook makes cfg call f before each document is mapped (tests: a panic in f
// stands for a defect in the mapping of that document).
func SetDocumentHook(cfg *Config, f func(pos string)) { cfg.onDocument = f }
