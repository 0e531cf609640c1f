package notebooksapi

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// docs/api.md's example configuration shows every limit at its default: the values the
// server takes when the file leaves them out.
func TestDocumentedLimitsAreTheDefaults(t *testing.T) {
	b, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(b), "```yaml\n")
	if !ok {
		t.Fatal("docs/api.md has no yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	// The limits: section only (the users' token hashes are shortened there).
	_, limits, ok := strings.Cut(block, "\nlimits:\n")
	if !ok {
		t.Fatal("docs/api.md's configuration has no limits")
	}
	var lines []string
	for _, line := range strings.Split(limits, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		lines = append(lines, line)
	}
	var doc struct {
		Limits Limits `yaml:"limits"`
	}
	if err := yaml.Unmarshal([]byte("limits:\n"+strings.Join(lines, "\n")), &doc); err != nil {
		t.Fatalf("docs/api.md's limits: %v", err)
	}
	if doc.Limits.MaxConcurrentQueries == 0 || doc.Limits.AuthFailureWindow == 0 {
		t.Fatalf("docs/api.md's limits were not read: %+v", doc.Limits)
	}
	if diff := cmp.Diff(Limits{}.withDefaults(), doc.Limits); diff != "" {
		t.Errorf("docs/api.md's limits are not the defaults (-code +docs):\n%s", diff)
	}
}
