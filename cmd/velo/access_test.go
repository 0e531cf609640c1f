package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var reloaded = regexp.MustCompile(`"msg":"reloaded users and tokens"`)

// TestServeRevokedToken: velo token revoke on the config of a running velo serve, then
// SIGHUP: the revoked token is refused with 401 naming revocation, a token issued meanwhile
// with velo token new works, and other users are untouched.
func TestServeRevokedToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs velo")
	}
	env := newOpsEnv(t, burstProject)
	srv := startServe(t, env)
	client := newClient()
	defer client.CloseIdleConnections()
	me := func(token string) (int, string) {
		t.Helper()
		status, b, err := call(client, "GET", srv.URL+"/v1/me", token, nil)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(b)
	}
	if status, b := me(env.tokens["rita"]); status != 200 {
		t.Fatalf("before: %d %s", status, b)
	}
	if out, err := runVelo(t, "token", "revoke", "--config", env.cfgPath, "--user", "rita"); err != nil || !strings.Contains(out, "revoked 1 tokens of rita") {
		t.Fatalf("token revoke: %v\n%s", err, out)
	}
	if status, _ := me(env.tokens["rita"]); status != 200 {
		t.Errorf("the revocation took effect before SIGHUP: %d", status)
	}
	fresh, err := runVelo(t, "token", "new", "--config", env.cfgPath, "--user", "rita")
	if err != nil {
		t.Fatalf("token new: %v\n%s", err, fresh)
	}
	fresh = strings.TrimSpace(strings.SplitN(fresh, "\n", 2)[0])
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for !reloaded.MatchString(srv.stderr.String()) {
		select {
		case <-srv.stderr.changed:
		case <-deadline.C:
			t.Fatalf("no reload logged within a minute:\n%s", srv.stderr)
		}
	}
	status, b := me(env.tokens["rita"])
	var p struct{ Code, Detail string }
	_ = json.Unmarshal([]byte(b), &p)
	if status != 401 || p.Code != "unauthorized" || !strings.Contains(p.Detail, "revoked") {
		t.Errorf("the revoked token: %d %s, want 401 naming revocation", status, b)
	}
	if status, b := me(fresh); status != 200 || !strings.Contains(b, `"user":"rita"`) {
		t.Errorf("the new token: %d %s", status, b)
	}
	if status, b := me(env.tokens["dora"]); status != 200 {
		t.Errorf("another user: %d %s", status, b)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("stop: %v\n%s", err, srv.stderr)
	}
}
