package notebooksapi_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

const hashA = "5824f5909e605f493e9710cca5635f6465724cec81dfa2791f63d772f900f5f9"

func TestParseConfig(t *testing.T) {
	base := "data: d\nstate: s\n"
	user := "users:\n  - name: rita\n    role: researcher\n    projects: [wl]\n"
	cases := []struct {
		name, doc, field string
	}{
		{"no data", "state: s\n" + user, "data"},
		{"no state", "data: d\n" + user, "state"},
		{"no users", base, "users"},
		{"bad role", base + "users:\n  - name: rita\n    role: root\n", "users[0].role"},
		{"no role", base + "users:\n  - name: rita\n", "users[0].role"},
		{"dpo with projects", base + "users:\n  - name: dora\n    role: dpo\n    projects: [wl]\n", "users[0].projects"},
		{"bad project id", base + "users:\n  - name: rita\n    role: researcher\n    projects: [WL!]\n", "users[0].projects[0]"},
		{"bad name", base + "users:\n  - name: 'r ita'\n    role: researcher\n", "users[0].name"},
		{"twice", base + user + "  - name: rita\n    role: official\n", "users[1].name"},
		{"bad hash", base + user + "    tokens:\n      - sha256: abc\n", "users[0].tokens[0].sha256"},
		{"shared hash", base + user + "    tokens:\n      - sha256: " + hashA + "\n  - name: otto\n    role: admin\n    tokens:\n      - sha256: " + hashA + "\n", "users[1].tokens[0].sha256"},
		{"negative timeout", base + "limits:\n  query_timeout: -1s\n" + user, "limits.query_timeout"},
		{"bad memory", base + "limits:\n  memory_limit: lots\n" + user, "limits.memory_limit"},
		{"too many slots", base + "limits:\n  max_concurrent_queries: 5000\n" + user, "limits.max_concurrent_queries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := notebooksapi.ParseConfig([]byte(c.doc))
			var fe *notebooksapi.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("error %v, want one naming %s", err, c.field)
			}
		})
	}
	// A misspelt option is an error, not ignored.
	if _, err := notebooksapi.ParseConfig([]byte(base + "limit:\n  query_timeout: 5s\n" + user)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("unknown field: %v", err)
	}
	cfg, err := notebooksapi.ParseConfig([]byte(base + "limits:\n  query_timeout: 90s\n  max_concurrent_queries: 3\n" + user))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.QueryTimeout != 90*time.Second || cfg.Limits.MaxConcurrentQueries != 3 {
		t.Errorf("limits: %+v", cfg.Limits)
	}
	if ql := cfg.Limits.QueryLimits(); ql.Timeout != 90*time.Second || ql.MemoryLimit != "2GB" || ql.Threads != 2 ||
		ql.MaxConcurrent != 3 || ql.QueueTimeout != 2*time.Second {
		t.Errorf("query limits: %+v", ql)
	}
}

func TestTokens(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "velo.yaml")
	doc := "# Velo server\ndata: data # the dataset\nstate: state\nusers:\n  # the researchers\n  - name: rita\n    role: researcher\n    projects: [wl]\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, stored, err := notebooksapi.NewToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "velo_") || len(tok) != 5+43 || stored.SHA256 != notebooksapi.HashToken(tok) || strings.Contains(stored.SHA256, tok) {
		t.Fatalf("token %q stored %+v", tok, stored)
	}
	if err := notebooksapi.AddToken(path, "rita", "", nil, stored, false); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{"# Velo server", "# the dataset", "# the researchers", stored.SHA256} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config lacks %q after AddToken:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), tok) {
		t.Fatal("the config holds the token itself")
	}
	cfg, err := notebooksapi.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Data != filepath.Join(dir, "data") || len(cfg.Users[0].Tokens) != 1 {
		t.Errorf("loaded %+v", cfg)
	}
	// A new user needs a role; an existing one cannot be changed this way.
	_, s2, _ := notebooksapi.NewToken(nil)
	if err := notebooksapi.AddToken(path, "dora", "", nil, s2, false); err == nil {
		t.Error("a new user without a role was added")
	}
	if err := notebooksapi.AddToken(path, "dora", notebooksapi.RoleDPO, nil, s2, false); err != nil {
		t.Fatal(err)
	}
	if err := notebooksapi.AddToken(path, "rita", notebooksapi.RoleAdmin, nil, s2, false); err == nil {
		t.Error("AddToken changed a role")
	}
	// An invalid result is never written: a dpo with projects.
	_, s3, _ := notebooksapi.NewToken(nil)
	if err := notebooksapi.AddToken(path, "dan", notebooksapi.RoleDPO, []string{"wl"}, s3, false); err == nil {
		t.Error("an invalid user was added")
	}
	_, s4, _ := notebooksapi.NewToken(nil)
	if err := notebooksapi.AddToken(path, "rita", "", nil, s4, true); err != nil {
		t.Fatal(err)
	}
	cfg, _ = notebooksapi.LoadConfig(path)
	if len(cfg.Users) != 2 || len(cfg.Users[0].Tokens) != 1 || cfg.Users[0].Tokens[0].SHA256 != s4.SHA256 {
		t.Errorf("after replace: %+v", cfg.Users)
	}
	if n, err := notebooksapi.RevokeTokens(path, "rita"); err != nil || n != 1 {
		t.Errorf("revoke: %d %v", n, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after edits", fi.Mode().Perm())
	}
}
