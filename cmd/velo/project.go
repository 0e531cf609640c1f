package main

import (
	"context"
	"errors"
)

func runProject(ctx context.Context, m *Main, args []string) error { return errors.New("not implemented yet") }
