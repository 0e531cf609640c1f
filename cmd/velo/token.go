package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

const tokenUsage = `Usage: velo token new|revoke --config velo.yaml --user NAME [flags]

  new     issue a token for a user: printed once on standard output, only its SHA-256 is
          stored in the config file (a new user needs --role, and --project for a
          researcher or official)
  revoke  remove every token of a user

A running server picks the change up on SIGHUP (or at its next start).`

func runToken(ctx context.Context, m *Main, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(m.Stderr, tokenUsage)
		if len(args) == 0 {
			return usageError{errors.New("token: want a subcommand: new or revoke")}
		}
		return nil
	}
	switch args[0] {
	case "new":
		return tokenNew(m, args[1:])
	case "revoke":
		return tokenRevoke(m, args[1:])
	}
	fmt.Fprintln(m.Stderr, tokenUsage)
	return usageError{fmt.Errorf("token: unknown subcommand %q", args[0])}
}

func tokenNew(m *Main, args []string) error {
	fs := m.newFlagSet("token new", `token new --config velo.yaml --user NAME [--role researcher|official|dpo|admin] [--project ID]... [--replace]

Draws a token (32 random bytes), prints it once on standard output for the person it is
for, and stores only its SHA-256 in the config file. Give it to them over a channel you
trust; nobody can show it again. --replace revokes the user's earlier tokens.`)
	cfgPath := fs.String("config", "", "server configuration file (required)")
	user := fs.String("user", "", "user name (required)")
	role := fs.String("role", "", "role, to add a user that is not in the config yet")
	var projects stringList
	fs.Var(&projects, "project", "project of a new researcher or official (repeatable)")
	replace := fs.Bool("replace", false, "revoke the user's earlier tokens")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "config", "user"); err != nil {
		return err
	}
	token, stored, err := notebooksapi.NewToken(nil)
	if err != nil {
		return err
	}
	stored.Created = nowUTC()
	if err := notebooksapi.AddToken(*cfgPath, *user, notebooksapi.Role(*role), projects, stored, *replace); err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, token)
	fmt.Fprintf(m.Stderr, "token for %s printed above, once; %s holds only its SHA-256. A running server takes it after SIGHUP.\n", *user, *cfgPath)
	return nil
}

func tokenRevoke(m *Main, args []string) error {
	fs := m.newFlagSet("token revoke", `token revoke --config velo.yaml --user NAME

Removes every token of the user from the config file (the user stays, without access).`)
	cfgPath := fs.String("config", "", "server configuration file (required)")
	user := fs.String("user", "", "user name (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "config", "user"); err != nil {
		return err
	}
	n, err := notebooksapi.RevokeTokens(*cfgPath, *user)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "revoked %d tokens of %s; a running server drops them after SIGHUP\n", n, *user)
	return nil
}

func nowUTC() time.Time { return time.Now().UTC().Truncate(time.Second) }
