package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/velo-fse/velo/pseudonymize"
)

func runKeys(ctx context.Context, m *Main, args []string) error {
	if len(args) == 0 || args[0] != "gen" {
		fmt.Fprintln(m.Stderr, "Usage: velo keys gen --out FILE")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return usageError{errors.New("keys: want the subcommand gen")}
	}
	fs := m.newFlagSet("keys gen", "keys gen --out FILE\n\nWrites a new pseudonymization key (256 random bits and its key id) with mode 0600.\nKeep it outside the data directory and never commit it; it refuses to overwrite.")
	out := fs.String("out", "", "key file to create (required)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return usageError{errors.New("keys gen: --out is required")}
	}
	k, err := pseudonymize.GenerateKey(nil)
	if err != nil {
		return err
	}
	if err := pseudonymize.WriteKeyFile(*out, k); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "wrote key %s to %s (mode 0600)\n", k.ID, *out)
	return nil
}
