package notebooksapi_test

import (
	"errors"
	"testing"

	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

// TestConfigEngine: engine is duckdb (the default) or spark, which needs spark.connect;
// a spark section without engine: spark, or another engine, is refused naming the field.
func TestConfigEngine(t *testing.T) {
	base := "data: d\nstate: s\nusers:\n  - name: rita\n    role: researcher\n    projects: [wl]\n"
	for doc, want := range map[string]notebooksapi.Config{
		"":               {},
		"engine: duckdb": {Engine: "duckdb"},
		"engine: spark\nspark:\n  connect: 10.0.0.1:15002\n  data_uri: /mnt/fse/data": {Engine: "spark", Spark: notebooksapi.SparkConfig{Connect: "10.0.0.1:15002", DataURI: "/mnt/fse/data"}},
	} {
		cfg, err := notebooksapi.ParseConfig([]byte(base + doc + "\n"))
		if err != nil || cfg.Engine != want.Engine || cfg.Spark != want.Spark {
			t.Errorf("%q: engine %q, spark %+v, %v", doc, cfg.Engine, cfg.Spark, err)
		}
	}
	for doc, field := range map[string]string{
		"engine: trino":                         "engine",
		"engine: spark":                         "spark.connect",
		"engine: spark\nspark:\n  connect: ' '": "spark.connect",
		"spark:\n  connect: 10.0.0.1:15002":     "spark",
		"engine: duckdb\nspark:\n  connect: x":  "spark",
	} {
		_, err := notebooksapi.ParseConfig([]byte(base + doc + "\n"))
		var fe *notebooksapi.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%q: %v, want a FieldError on %s", doc, err, field)
		}
	}
}
