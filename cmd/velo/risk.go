package main

import (
	"context"
	"errors"
)

func runRisk(ctx context.Context, m *Main, args []string) error { return errors.New("not implemented") }
