package main

import (
	"context"

	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/query"
	"github.com/velo-fse/velo/query/spark"
)

// openBackend opens the engine the config names (nil: the embedded DuckDB).
func openBackend(ctx context.Context, cfg notebooksapi.Config) (query.Backend, error) {
	if cfg.Engine != query.DialectSpark {
		return nil, nil
	}
	b, err := spark.Open(ctx, spark.Config{Remote: cfg.Spark.Connect, DataDir: cfg.Data, DataURI: cfg.Spark.DataURI})
	if err != nil {
		return nil, err
	}
	return b, nil
}
