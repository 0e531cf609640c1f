package notebooksapi_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/internal/testenv"
	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/notebooks-api/apitest"
)

var (
	realAccuracy = regexp.MustCompile(`Accuracy on real data \(DP\): ([0-9.]+); sensitivity ([0-9.]+), specificity ([0-9.]+), balanced accuracy ([0-9.]+)`)
	noisyTotal   = regexp.MustCompile(`Real bookings with a target \(noisy\): ([0-9]+),`)
	cmCell       = regexp.MustCompile(`predicted (beyond|within) +actual (beyond|within) +(-?[0-9]+) +\[`)
)

// TestNotebookTrainOnSynthetic executes examples/beyond_target.ipynb headlessly against a
// live server on loopback, as the researcher, with the velo-client package of this tree
// (VELO_PYTHON): it synthesizes bookings at epsilon 2 (one charge, person_rows, NULLs kept), trains a
// logistic regression on them, writes it as SQL and evaluates it on the real bookings as one
// DP query (a COUNT per predicted × actual class). The test checks the two charges in the
// ledger, that the four released counts add up to about the real number of bookings with a
// target (exact, computed here from the dataset), and that the classifier trained on
// synthetic data beats chance on the real data (balanced accuracy above 0.6: the target
// depends on the priority class and the wait by construction; measured 0.73–0.80 over five
// runs, and 0.59–0.80 over ten at epsilon 1).
func TestNotebookTrainOnSynthetic(t *testing.T) {
	python := testenv.NotebookPython(t)
	ts := startServer(t)
	examples, err := filepath.Abs("examples")
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.NotebookEnv(append(os.Environ(), "VELO_URL="+ts.URL, "VELO_TOKEN="+ts.Tokens["rita"]), root)
	out := filepath.Join(t.TempDir(), "out.ipynb")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-Xfrozen_modules=off", "-c", testenv.RunNotebook, filepath.Join(examples, "beyond_target.ipynb"), examples, out)
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	text, _ := notebookText(t, out)
	defer func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("notebook output:\n%s", text)
		}
	}()
	for _, want := range []string{
		"Synthetic bookings: 20000 rows", "charged epsilon 2, delta 1e-06; bounding person_rows, at most 1 row per person",
		"Utility report (free): mean TVD", "it will cost epsilon 1, delta 0",
		"Confusion matrix on the real bookings", "Spent in this notebook: epsilon 3 (synthetic data 2, confusion matrix 1)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the notebook's output lacks %q", want)
		}
	}
	// Synthetic rows keep missing values: priority is NULL on the follow-ups.
	if m := regexp.MustCompile(`Missing priority in ([0-9]+)% of the synthetic rows`).FindStringSubmatch(text); m == nil || m[1] == "0" {
		t.Errorf("no missing priority in the synthetic rows: %q", m)
	}
	// Charged twice: the synthesis and the confusion matrix.
	if st := ts.project(t, "wl"); st.Queries != 2 || st.Spent.Epsilon != 3 || st.Spent.Delta != 1e-6 {
		t.Errorf("%d charges, spent %v; want 2 charges, epsilon 3 and delta 1e-6", st.Queries, st.Spent)
	}
	charges := 0
	for _, e := range ts.Ledger.Entries("wl", 0) {
		if e.Kind == ledger.KindCharge {
			charges++
		}
	}
	if charges != 2 {
		t.Errorf("%d charges in the ledger, want 2", charges)
	}
	cells := cmCell.FindAllStringSubmatch(text, -1)
	if len(cells) != 4 {
		t.Fatalf("%d cells of the confusion matrix printed, want 4", len(cells))
	}
	// The released counts add up to the real number of bookings with a target, within the
	// noise (four counts, each within a few hundred at epsilon 1 on this extract).
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var real float64
	if err := db.QueryRow("SELECT count(*) FROM read_parquet('" + dataset.TableGlob(apitest.Dataset(t), "booking") + "') WHERE within_target IS NOT NULL AND priority IS NOT NULL").Scan(&real); err != nil {
		t.Fatal(err)
	}
	m := noisyTotal.FindStringSubmatch(text)
	if m == nil {
		t.Fatal("no noisy total printed")
	}
	if got, _ := strconv.ParseFloat(m[1], 64); got < 0.8*real || got > 1.2*real {
		t.Errorf("the confusion matrix counts %v bookings with a target; the data has %v", got, real)
	}
	acc := realAccuracy.FindStringSubmatch(text)
	if acc == nil {
		t.Fatal("no accuracy on real data printed")
	}
	if bal, _ := strconv.ParseFloat(acc[4], 64); bal <= 0.6 {
		t.Errorf("balanced accuracy on the real bookings %v: the classifier trained on synthetic data is no better than chance", bal)
	}
	t.Logf("on real data (DP): accuracy %s, sensitivity %s, specificity %s, balanced %s", acc[1], acc[2], acc[3], acc[4])
}
