package main

import (
	"context"
	"errors"
)

func runSynth(ctx context.Context, m *Main, args []string) error { return errors.New("not implemented") }
