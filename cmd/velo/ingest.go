package main

import (
	"context"
	"errors"
)

func runIngest(ctx context.Context, m *Main, args []string) error { return errors.New("not implemented") }
