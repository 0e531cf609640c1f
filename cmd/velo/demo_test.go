package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	notebooksapi "github.com/velo-fse/velo/notebooks-api"
	"github.com/velo-fse/velo/notebooks-api/apitest"
)

var runningAt = regexp.MustCompile(`Velo demo is running at (http://\S+) `)

// startDemo runs velo demo in-process until the returned stop is called (as Ctrl-C does:
// main cancels the same context on SIGINT and SIGTERM), and returns its URL and output.
func startDemo(t *testing.T, dir string) (url string, out *apitest.Buffer, stop func() error) {
	t.Helper()
	out = &apitest.Buffer{}
	errOut := &apitest.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&Main{Stdout: out, Stderr: errOut}).Run(ctx, []string{"demo", "--dir", dir, "--persons", "300", "--addr", "127.0.0.1:0"})
	}()
	deadline := time.After(3 * time.Minute)
	for {
		if m := runningAt.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("velo demo ended: %v\n%s\n%s", err, out.String(), errOut.String())
		case <-deadline:
			cancel()
			t.Fatalf("velo demo did not start:\n%s\n%s", out.String(), errOut.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	var once sync.Once
	var err error
	return url, out, func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
}

func demoQuery(t *testing.T, url, token string) map[string]any {
	t.Helper()
	body := `{"project": "wl", "epsilon": 0.5, "sql": "SELECT region, AVG(CAST(within_target AS INTEGER)) AS share_within_target FROM booking WHERE first_access GROUP BY region ORDER BY region"}`
	req, _ := http.NewRequest("POST", url+"/v1/queries", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("query: %d %s", resp.StatusCode, b)
	}
	var rel map[string]any
	if err := json.Unmarshal(b, &rel); err != nil {
		t.Fatal(err)
	}
	return rel
}

// TestDemo runs velo demo from an empty directory, queries the server it starts with the
// token it printed, checks the ledger lock keeps velo project out, stops it, and runs it
// again: everything is reused and the same query is answered from the cache.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	url, out, stop := startDemo(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "tokens.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("tokens.json mode %v", fi.Mode().Perm())
	}
	var tokens map[string]string
	if err := json.Unmarshal(b, &tokens); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 3 || tokens["researcher"] == "" || tokens["official"] == "" || tokens["dpo"] == "" {
		t.Fatalf("tokens.json: %v", tokens)
	}
	text := out.String()
	for _, want := range []string{"synth: 300 synthetic people", "keys: wrote key", "dataset version", "ledger: created", "curl -s " + url + "/v1/queries -H 'Authorization: Bearer " + tokens["researcher"] + "'",
		"VELO_URL=" + url + " VELO_TOKEN=" + tokens["researcher"] + " jupyter notebook notebooks-api/examples/waiting_lists.ipynb", "VELO_URL=" + url + " VELO_GRAFANA_TOKEN=" + tokens["official"], tokens["dpo"], url + "/ledger"} {
		if !strings.Contains(text, want) {
			t.Errorf("velo demo's output lacks %q", want)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "velo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for role, tok := range tokens {
		if strings.Contains(string(cfg), tok) || !strings.Contains(string(cfg), notebooksapi.HashToken(tok)) {
			t.Errorf("velo.yaml does not hold exactly the hash of the %s token", role)
		}
	}
	rel := demoQuery(t, url, tokens["researcher"])
	if rel["cached"] != false || rel["project"] != "wl" {
		t.Errorf("first query: %v", rel)
	}
	// The server holds the ledger: velo project and velo query are kept out with a message
	// naming the holder, and saying what to do instead: the same request through the API, or
	// stop the server.
	state, data := filepath.Join(dir, "state"), filepath.Join(dir, "data")
	const sql = "SELECT region, COUNT(DISTINCT pid) AS people FROM booking WHERE wait_days < 30 GROUP BY region"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"project", "grant", "--state", state, "--id", "wl", "--epsilon", "1"},
			`curl -s "$VELO_URL/v1/projects/wl/grants" -H "Authorization: Bearer $DPO_TOKEN" -H 'Content-Type: application/json' \` + "\n" + `    -d '{"epsilon":1,"delta":0}'`},
		{[]string{"project", "create", "--state", state, "--id", "pngla", "--purpose", "PNGLA's monitoring", "--legal-basis", "art. 9(2)(h) GDPR", "--allow", "booking", "--epsilon-budget", "1", "--delta-budget", "0"},
			`curl -s "$VELO_URL/v1/projects" -H "Authorization: Bearer $DPO_TOKEN" -H 'Content-Type: application/json' \` + "\n" +
				`    -d '{"id":"pngla","purpose":"PNGLA'\''s monitoring","legal_basis":"art. 9(2)(h) GDPR","allow":{"booking":[]},"epsilon_budget":1,"delta_budget":0}'`},
		{[]string{"query", "--data", data, "--state", state, "--project", "wl", "--epsilon", "0.5", sql},
			`curl -s "$VELO_URL/v1/queries" -H "Authorization: Bearer $VELO_TOKEN" -H 'Content-Type: application/json' \` + "\n" +
				`    -d '{"sql":"SELECT region, COUNT(DISTINCT pid) AS people FROM booking WHERE wait_days < 30 GROUP BY region","project":"wl","epsilon":0.5}'`},
	} {
		_, err = velo(t, c.args...)
		if err == nil {
			t.Fatalf("velo %s beside the server: no error", strings.Join(c.args, " "))
		}
		for _, want := range []string{"ledger locked", "held by pid", "A server (velo serve or velo demo) holds this ledger", c.want, "or stop the server (Ctrl-C in its terminal) and run this command again"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("velo %s beside the server: the message lacks %q:\n%v", c.args[0]+" "+c.args[1], want, err)
			}
		}
	}
	key, _ := os.ReadFile(filepath.Join(dir, "pseudonymization.key"))
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// With the server stopped, the README's command-line path: the demo's project exists, so
	// a second one; queries on it; a budget that runs out, with the numbers and the grant.
	if _, err := velo(t, "project", "create", "--state", state, "--id", "wl", "--purpose", "again", "--legal-basis", "art. 9(2)(h) GDPR", "--allow", "booking", "--epsilon-budget", "1", "--delta-budget", "0"); err == nil ||
		!strings.Contains(err.Error(), "this ledger already has a project wl (velo project show --state "+state+" lists them)") {
		t.Errorf("create wl again: %v", err)
	}
	mustVelo(t, "project", "create", "--state", state, "--id", "pngla", "--purpose", "PNGLA monitoring", "--legal-basis", "art. 9(2)(h) GDPR", "--allow", "booking", "--epsilon-budget", "1", "--delta-budget", "0")
	if out := mustVelo(t, "query", "--data", data, "--state", state, "--project", "pngla", "--epsilon", "0.75", sql); !strings.Contains(out, "people") {
		t.Errorf("query: %s", out)
	}
	const sql2 = "SELECT priority, COUNT(DISTINCT pid) AS people FROM booking GROUP BY priority"
	_, err = velo(t, "query", "--data", data, "--state", state, "--project", "pngla", "--epsilon", "0.5", sql2)
	for _, want := range []string{"privacy budget exhausted: the query asks for epsilon 0.5 and delta 0; project pngla has epsilon 0.25 and delta 0 left of epsilon 1 and delta 0 (epsilon 0.75 and delta 0 spent)",
		"A DPO can grant more: velo project grant --state " + state + " --id pngla --epsilon E --reason TEXT (while a server runs: POST /v1/projects/pngla/grants)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("query past the budget: the message lacks %q:\n%v", want, err)
		}
	}
	mustVelo(t, "project", "grant", "--state", state, "--id", "pngla", "--epsilon", "0.5", "--reason", "one more question")
	mustVelo(t, "query", "--data", data, "--state", state, "--project", "pngla", "--epsilon", "0.5", sql2)

	url, out, stop = startDemo(t, dir)
	defer stop()
	text = out.String()
	for _, want := range []string{"synth: reusing", "keys: reusing", "ingest: reusing", "ledger: reusing", "tokens: reusing"} {
		if !strings.Contains(text, want) {
			t.Errorf("second run's output lacks %q:\n%s", want, text)
		}
	}
	if key2, _ := os.ReadFile(filepath.Join(dir, "pseudonymization.key")); !bytes.Equal(key, key2) {
		t.Error("the key changed")
	}
	again := demoQuery(t, url, tokens["researcher"])
	if again["cached"] != true || again["release_id"] != rel["release_id"] {
		t.Errorf("second run, same query: cached %v, release %v (first %v)", again["cached"], again["release_id"], rel["release_id"])
	}
	// Without tokens.json, new tokens replace the old ones.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "tokens.json"))
	url, _, stop = startDemo(t, dir)
	defer stop()
	b, _ = os.ReadFile(filepath.Join(dir, "tokens.json"))
	var fresh map[string]string
	_ = json.Unmarshal(b, &fresh)
	if fresh["researcher"] == tokens["researcher"] || fresh["researcher"] == "" {
		t.Fatal("no new researcher token")
	}
	req, _ := http.NewRequest("GET", url+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tokens["researcher"])
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("the old token still works: %v %v", resp, err)
	}
	if again := demoQuery(t, url, fresh["researcher"]); again["cached"] != true {
		t.Error("the new token does not reach the same ledger")
	}
}

func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "velo.yaml")
	if err := os.WriteFile(path, []byte("data: data\nstate: state\nusers:\n  - name: adam\n    role: admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	if err := m.Run(context.Background(), []string{"token", "new", "--config", path, "--user", "rita", "--role", "researcher", "--project", "wl"}); err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(stdout.String())
	if strings.Count(stdout.String(), "\n") != 1 || !strings.HasPrefix(tok, "velo_") {
		t.Fatalf("stdout is not the token alone: %q", stdout.String())
	}
	if strings.Contains(stderr.String(), tok) {
		t.Error("the token is on stderr too")
	}
	cfg, err := notebooksapi.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Users) != 2 || cfg.Users[1].Name != "rita" || cfg.Users[1].Tokens[0].SHA256 != notebooksapi.HashToken(tok) || cfg.Users[1].Projects[0] != "wl" {
		t.Errorf("config: %+v", cfg.Users)
	}
	out := mustVelo(t, "token", "revoke", "--config", path, "--user", "rita")
	if !strings.Contains(out, "revoked 1 tokens of rita") {
		t.Errorf("revoke: %s", out)
	}
	if _, err := velo(t, "token", "new", "--config", path, "--user", "nobody"); err == nil || !strings.Contains(err.Error(), "--role") {
		t.Errorf("new user without a role: %v", err)
	}
	// serve refuses an invalid config, naming the field.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("data: d\nstate: s\nusers:\n  - name: x\n    role: root\n"), 0o600)
	if _, err := velo(t, "serve", "--config", bad); err == nil || !strings.Contains(err.Error(), "users[0].role") {
		t.Errorf("serve with a bad config: %v", err)
	}
}
