package bench

import (
	"context"
	"os"

	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
)

// OpenEngine opens the engine over data with a new ledger in state holding the one project
// p, created by a DPO the benchmarks name dpo:bench. With state empty the ledger lives in a
// new temporary directory. closeAll closes the engine and the ledger and removes that
// directory.
func OpenEngine(ctx context.Context, data, state string, p ledger.Project, limits query.Limits) (eng *query.Engine, led *ledger.Ledger, closeAll func(), err error) {
	var tmp string
	if state == "" {
		if tmp, err = os.MkdirTemp("", "velo-bench-state-"); err != nil {
			return nil, nil, nil, err
		}
		state = tmp
	}
	cleanup := func() {
		if led != nil {
			led.Close()
		}
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}
	if led, err = ledger.Open(state, ledger.Options{}); err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	if err = led.CreateProject(ctx, "dpo:bench", p); err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	if eng, err = query.Open(ctx, query.Config{DataDir: data, Ledger: led, Limits: limits}); err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return eng, led, func() { eng.Close(); cleanup() }, nil
}
