package notebooksapi_test

import (
	"errors"
	"testing"

	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

// TestConfigLedger: the ledger setting takes a postgres:// URL (the ledger in PostgreSQL,
// shared by replicas); anything else is refused naming the field.
func TestConfigLedger(t *testing.T) {
	user := "users:\n  - name: rita\n    role: researcher\n    projects: [wl]\n"
	for _, dsn := range []string{"postgres://velo@db:5432/velo", "postgresql://db/velo?sslmode=verify-full"} {
		cfg, err := notebooksapi.ParseConfig([]byte("data: d\nstate: s\nledger: " + dsn + "\n" + user))
		if err != nil || cfg.Ledger != dsn {
			t.Errorf("ledger %s: %+v, %v", dsn, cfg.Ledger, err)
		}
	}
	for _, bad := range []string{"mysql://db/velo", "host=db dbname=velo", "/var/lib/velo"} {
		_, err := notebooksapi.ParseConfig([]byte("data: d\nstate: s\nledger: " + bad + "\n" + user))
		var fe *notebooksapi.FieldError
		if !errors.As(err, &fe) || fe.Field != "ledger" {
			t.Errorf("ledger %q: %v, want a FieldError on ledger", bad, err)
		}
	}
}
