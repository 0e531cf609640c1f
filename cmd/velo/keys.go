package main

import (
	"context"
	"errors"
)

func runKeys(ctx context.Context, m *Main, args []string) error { return errors.New("not implemented") }
