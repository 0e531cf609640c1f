package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/velo-fse/velo/dataset"
)

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// datasetVersion hashes what identifies a dataset's content: the previous version (for
// appends and removals), the input hashes, the key id and the counts.
func datasetVersion(prev, keyID string, inputs []dataset.InputFile, tables map[string]dataset.TableCounts, extra string) string {
	h := sha256.New()
	fmt.Fprintf(h, "velo/dataset/v1\x00%s\x00%s\x00%s\x00", prev, keyID, extra)
	for _, in := range inputs {
		fmt.Fprintf(h, "%s\x00%s\x00", in.SHA256, in.Format)
	}
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := tables[n]
		fmt.Fprintf(h, "%s:%d:%d:%d:%d:%d:%d:%d\x00", n, c.Read, c.Written, c.Quarantined, c.OptedOut, c.OutsidePeriod, c.Superseded, c.Merged)
	}
	return "ds_" + hex.EncodeToString(h.Sum(nil)[:12])
}
