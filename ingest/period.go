package ingest

import "github.com/velo-fse/velo/fse"

// Period is the extract's declared period (see fse.Period).
type Period = fse.Period

// ParsePeriod parses FROM..TO (see fse.ParsePeriod).
func ParsePeriod(s string) (*Period, error) { return fse.ParsePeriod(s) }
