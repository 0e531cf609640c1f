package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/velo-fse/velo/ledger"
)

// apiEquivalent is the HTTP request that does what a ledger-writing command would, for the
// message that a server holds the ledger: the API's path, the environment variable the
// token is read from, and the body.
type apiEquivalent struct {
	path     string
	tokenVar string
	body     any
}

// curl prints the request as a command line a person can paste: the address and the token
// come from the environment (VELO_URL, and VELO_TOKEN or DPO_TOKEN), never the command line.
func (a apiEquivalent) curl() string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // SQL's < and > stay readable
	_ = enc.Encode(a.body)
	return fmt.Sprintf("  curl -s \"$VELO_URL%s\" -H \"Authorization: Bearer $%s\" -H 'Content-Type: application/json' \\\n    -d %s",
		a.path, a.tokenVar, shellQuote(strings.TrimSpace(b.String())))
}

// lockedHint explains a locked ledger: while a server (velo serve, velo demo) runs, it holds
// the ledger, and the CLI's writes go through the server's API instead, or wait until the
// server stops. Other errors pass unchanged.
func lockedHint(err error, api apiEquivalent) error {
	if !errors.Is(err, ledger.ErrLocked) {
		return err
	}
	return fmt.Errorf("%w\n\nA server (velo serve or velo demo) holds this ledger while it runs, so this command cannot write to it. Either send the same request to the server's API\n"+
		"(VELO_URL is its address, %s a token of a user allowed to do this; velo demo writes its tokens to tokens.json):\n\n%s\n\n"+
		"or stop the server (Ctrl-C in its terminal) and run this command again.", err, api.tokenVar, api.curl())
}

// budgetHint adds to a budget refusal how the budget grows: a DPO's grant.
func budgetHint(err error, state string) error {
	var be *ledger.BudgetError
	if !errors.As(err, &be) {
		return err
	}
	return fmt.Errorf("%w\nA DPO can grant more: velo project grant --state %s --id %s --epsilon E --reason TEXT (while a server runs: POST /v1/projects/%s/grants). "+
		"A query asked before is answered from the release cache at no cost.", err, shellQuote(state), be.Project, be.Project)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
