package oidctest_test

import (
	"os"
	"slices"
	"testing"

	"github.com/velo-fse/velo/internal/oidctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	oidctest.StopShared()
	os.Exit(code)
}

// TestRealmTokensAndRotation: a realm's password grant gives tokens signed with its active
// key; a rotation publishes a new key that signs the next tokens; removing the old key
// takes it out of the JWKS.
func TestRealmTokensAndRotation(t *testing.T) {
	p := oidctest.Shared(t)
	r := p.NewRealm(t, oidctest.RealmOptions{Users: []oidctest.User{{Name: "dana", Password: "pw-dana", Roles: []string{"velo-dpo"}, Projects: []string{"wl"}}}})
	tok := r.PasswordToken(t, "dana", "pw-dana")
	if tok.AccessToken == "" || tok.IDToken == "" {
		t.Fatalf("tokens: %+v", tok)
	}
	old, err := oidctest.KeyID(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if ids := r.JWKSKeyIDs(t); !slices.Contains(ids, old) {
		t.Fatalf("the token's key %s is not in the JWKS %v", old, ids)
	}
	kid := r.RotateKey(t)
	if kid == old {
		t.Fatalf("rotation kept the key %s", kid)
	}
	tok2 := r.PasswordToken(t, "dana", "pw-dana")
	if got, _ := oidctest.KeyID(tok2.AccessToken); got != kid {
		t.Fatalf("after rotation the token is signed by %s, want %s", got, kid)
	}
	if ids := r.JWKSKeyIDs(t); !slices.Contains(ids, old) || !slices.Contains(ids, kid) {
		t.Fatalf("JWKS after rotation: %v, want both %s and %s", ids, old, kid)
	}
	r.RemoveKey(t, old)
	if ids := r.JWKSKeyIDs(t); slices.Contains(ids, old) || !slices.Contains(ids, kid) {
		t.Fatalf("JWKS after removal: %v, want %s only", ids, kid)
	}
}
