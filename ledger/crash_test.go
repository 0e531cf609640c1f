package ledger_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/velo-fse/velo/ledger"
)

const burstEnv = "VELO_LEDGER_BURST_DIR"

// TestHelperBurst is not a test: run by TestKillDuringBurst as a child process, it charges and
// releases in a loop from several goroutines until it is killed, printing "charged <seq>" only
// after Charge has returned.
func TestHelperBurst(t *testing.T) {
	dir := os.Getenv(burstEnv)
	if dir == "" {
		t.Skip("helper process for TestKillDuringBurst")
	}
	l, err := ledger.Open(dir, ledger.Options{CheckpointEvery: 8})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				c, err := l.Charge(context.Background(), chargeReq("wl", fmt.Sprintf("SELECT %d FROM g%d", i, g), 0.001, 0))
				if err != nil {
					fmt.Println("charge:", err)
					os.Exit(1)
				}
				mu.Lock()
				os.Stdout.WriteString("charged " + strconv.FormatUint(c.Seq, 10) + "\n")
				mu.Unlock()
				if err := l.Release(context.Background(), c, []byte(fmt.Sprintf(`{"rows":[[%d]]}`, i))); err != nil {
					fmt.Println("release:", err)
					os.Exit(1)
				}
			}
		})
	}
	wg.Wait()
}

// TestKillDuringBurst: SIGKILL a process in the middle of a burst of charges. Every charge it
// reported is durable, every release has its charge, and after a restart Verify passes.
func TestKillDuringBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	l := open(t, dir, ledger.Options{})
	createProject(t, l, project("wl", 1000, 0))
	closeLedger(t, l)

	for round := range 3 { // several kills, each at a different moment of the burst
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBurst$", "-test.count=1")
		cmd.Env = append(os.Environ(), burstEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var reported []uint64
		sc := bufio.NewScanner(out)
		killAt := 20 + 37*round
		for sc.Scan() {
			line := sc.Text()
			seq, ok := strings.CutPrefix(line, "charged ")
			if !ok {
				t.Fatalf("child: %s", line)
			}
			n, _ := strconv.ParseUint(seq, 10, 64)
			reported = append(reported, n)
			if len(reported) == killAt {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		// Lines still in the pipe when the child died were reported too.
		state, _ := cmd.Process.Wait()
		if len(reported) < killAt || state.Success() {
			t.Fatalf("round %d: child reported %d charges and exited %v", round, len(reported), state)
		}

		if _, err := ledger.Verify(dir, ledger.VerifyOptions{}); err != nil {
			t.Logf("round %d: before restart: %v", round, err) // a torn tail is allowed here
		}
		start := time.Now()
		l := open(t, dir, ledger.Options{})
		t.Logf("round %d: %d charges reported, reopened %d entries in %v", round, len(reported), len(l.Entries("", 0)), time.Since(start))
		entries := l.Entries("", 0)
		for _, seq := range reported {
			if seq == 0 || seq > uint64(len(entries)) || entries[seq-1].Kind != ledger.KindCharge {
				t.Fatalf("round %d: reported charge %d is not a durable charge", round, seq)
			}
		}
		for _, e := range entries {
			if e.Kind == ledger.KindRelease && entries[e.ChargeSeq-1].Kind != ledger.KindCharge {
				t.Fatalf("release %d has no charge", e.Seq)
			}
		}
		closeLedger(t, l)
		mustVerify(t, dir)
	}
}
