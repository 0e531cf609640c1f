package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/velo-fse/velo/dataset"
)

// Committing a dataset version. An ingest (Run, RemoveOptedOut) never writes DATA's tables,
// catalog or manifest in place. It prepares the new version in its working folder
// (DATA/.ingest-*/next: each table, the catalog, the manifest, the batch's quarantine, and
// commit.json listing them), syncs it, and renames it to DATA/.commit. It then moves each
// item into DATA, keeping what it replaces under DATA/.commit/.old, and renames the manifest
// into place last: that rename is the commit point. Last it removes DATA/.commit.
//
// A reader (query.Open, through dataset.CheckCommitted) refuses a DATA holding .commit
// (dataset.CommitDir), so it sees the version before or the version after, never a mix.
// Recover, which every ingest runs first under DATA/.ingest.lock, settles an interrupted
// commit: before the commit point it puts the old items back (the ingest did not happen:
// run it again), after it it only removes .commit; and it removes the working folders that
// killed runs left behind.

const (
	commitList   = "commit.json"
	oldDirName   = ".old"
	lockFileName = ".ingest.lock"
)

// errCrashed is what a commit stopped by crashAfter returns (tests only).
var errCrashed = errors.New("commit stopped (simulated crash)")

// commitManifest lists what a commit moves into DATA, in order; manifest.json follows them.
type commitManifest struct {
	Version string   `json:"dataset_version"`
	Items   []string `json:"items"`
}

// commit writes the catalog and manifest of man into next, which holds the new version's
// tables (and the batch's quarantine), and commits next as DATA's new version. crashAfter > 0
// stops it before its step crashAfter, a rename (tests).
func commit(dataDir, next string, man *dataset.Manifest, crashAfter int) error {
	if err := writeJSONFile(dataset.CatalogPath(next), BuildCatalog(man.DatasetVersion, man.Period)); err != nil {
		return fmt.Errorf("write catalog: %w", err)
	}
	if err := writeJSONFile(dataset.ManifestPath(next), man); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	cm := commitManifest{Version: man.DatasetVersion}
	for _, t := range slices.Concat(Tables, InternalTables) {
		if _, err := os.Stat(dataset.TableDir(next, t.Name)); err == nil {
			cm.Items = append(cm.Items, t.Name)
		}
	}
	qs, _ := filepath.Glob(filepath.Join(next, dataset.QuarantineDir, "*"))
	for _, q := range qs {
		cm.Items = append(cm.Items, filepath.ToSlash(filepath.Join(dataset.QuarantineDir, filepath.Base(q))))
	}
	cm.Items = append(cm.Items, dataset.CatalogFile)
	if err := writeJSONFile(filepath.Join(next, commitList), cm); err != nil {
		return fmt.Errorf("write commit list: %w", err)
	}
	if err := syncTree(next); err != nil {
		return fmt.Errorf("sync the new version: %w", err)
	}
	c := dataset.CommitPath(dataDir)
	if err := os.Rename(next, c); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := syncDir(dataDir); err != nil {
		return err
	}
	return applyCommit(dataDir, cm.Items, crashAfter)
}

// applyCommit moves the items of DATA/.commit into DATA, then the manifest, then removes
// DATA/.commit.
func applyCommit(dataDir string, items []string, crashAfter int) error {
	c := dataset.CommitPath(dataDir)
	steps := 0
	crash := func() bool { steps++; return crashAfter > 0 && steps >= crashAfter }
	dirs := map[string]bool{dataDir: true}
	for _, it := range items {
		dst := filepath.Join(dataDir, filepath.FromSlash(it))
		if _, err := os.Lstat(dst); err == nil {
			old := filepath.Join(c, oldDirName, filepath.FromSlash(it))
			if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			if crash() {
				return errCrashed
			}
			if err := os.Rename(dst, old); err != nil {
				return fmt.Errorf("commit %s: %w", it, err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		if crash() {
			return errCrashed
		}
		if err := os.Rename(filepath.Join(c, filepath.FromSlash(it)), dst); err != nil {
			return fmt.Errorf("commit %s: %w", it, err)
		}
		dirs[filepath.Dir(dst)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	if crash() {
		return errCrashed
	}
	// The commit point.
	if err := os.Rename(dataset.ManifestPath(c), dataset.ManifestPath(dataDir)); err != nil {
		return fmt.Errorf("commit manifest: %w", err)
	}
	if err := syncDir(dataDir); err != nil {
		return err
	}
	if crash() {
		return errCrashed
	}
	if err := os.RemoveAll(c); err != nil {
		return fmt.Errorf("remove the replaced version: %w", err)
	}
	return syncDir(dataDir)
}

// Recovery is what Recover did.
type Recovery struct {
	// RolledBack: a commit was interrupted before its commit point and undone; DATA holds the
	// version it had before (Version, "" if none): the interrupted ingest did not happen.
	RolledBack bool
	// Completed: a commit was interrupted after its commit point; only its cleanup was left.
	Completed bool
	// Version is the dataset version in DATA after recovery ("" if none).
	Version string
	// Removed lists the working folders of interrupted runs that were removed.
	Removed []string
}

// Recover settles what an interrupted ingest left in dir (see the comment on commit), under
// the ingest lock, and logs what it did at warning level. Run and RemoveOptedOut call it
// first; velo ingest --recover calls it alone.
func Recover(dir string, log *slog.Logger) (Recovery, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return Recovery{}, err
	}
	defer unlock()
	return recoverLocked(dir, log)
}

func recoverLocked(dir string, log *slog.Logger) (Recovery, error) {
	var rec Recovery
	c := dataset.CommitPath(dir)
	if _, err := os.Lstat(c); err == nil {
		if _, err := os.Lstat(dataset.ManifestPath(c)); errors.Is(err, fs.ErrNotExist) {
			if err := os.RemoveAll(c); err != nil {
				return rec, fmt.Errorf("recover %s: %w", dir, err)
			}
			rec.Completed = true
		} else {
			if err := rollBack(dir, c); err != nil {
				return rec, fmt.Errorf("recover %s: roll back the interrupted commit: %w", dir, err)
			}
			rec.RolledBack = true
		}
		if err := syncDir(dir); err != nil {
			return rec, err
		}
	}
	// Working folders of runs that were killed (and of the layout before .commit).
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rec, err
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".ingest-") || strings.HasPrefix(n, ".remove-") || strings.HasPrefix(n, ".old-") || n == ".next" {
			p := filepath.Join(dir, n)
			if err := os.RemoveAll(p); err != nil {
				return rec, fmt.Errorf("remove %s, left by an interrupted ingest: %w", p, err)
			}
			rec.Removed = append(rec.Removed, p)
		}
	}
	if man, err := dataset.ReadManifest(dir); err == nil {
		rec.Version = man.DatasetVersion
	}
	switch {
	case rec.RolledBack:
		log.Warn("an ingest was interrupted while committing a new dataset version: rolled it back; run it again",
			"data", dir, "dataset_version", versionOrNone(rec.Version))
	case rec.Completed:
		log.Warn("an ingest was interrupted after committing its dataset version: finished its cleanup",
			"data", dir, "dataset_version", rec.Version)
	}
	for _, p := range rec.Removed {
		log.Warn("removed the working folder of an interrupted ingest", "folder", p)
	}
	return rec, nil
}

func versionOrNone(v string) string {
	if v == "" {
		return "none (no dataset yet)"
	}
	return v
}

// rollBack undoes an interrupted commit, last item first: an item already moved into DATA
// is removed, and what it replaced is put back.
func rollBack(dataDir, c string) error {
	b, err := os.ReadFile(filepath.Join(c, commitList))
	if err != nil {
		return err
	}
	var cm commitManifest
	if err := json.Unmarshal(b, &cm); err != nil {
		return fmt.Errorf("%s: %w", commitList, err)
	}
	for _, it := range slices.Backward(cm.Items) {
		dst := filepath.Join(dataDir, filepath.FromSlash(it))
		if _, err := os.Lstat(filepath.Join(c, filepath.FromSlash(it))); errors.Is(err, fs.ErrNotExist) {
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
		}
		old := filepath.Join(c, oldDirName, filepath.FromSlash(it))
		if _, err := os.Lstat(old); err == nil {
			if err := os.Rename(old, dst); err != nil {
				return err
			}
		}
	}
	return os.RemoveAll(c)
}

// syncTree fsyncs every file and directory under root, so that a commit never points at data
// still in flight.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
