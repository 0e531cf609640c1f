package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// InstallDir takes the setting's folder when it holds the marker, refuses it when not, and
// otherwise picks the last candidate holding the marker.
func TestInstallDir(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"tool-1", "tool-2", "tool-3"} {
		os.MkdirAll(filepath.Join(root, d, "bin"), 0o755)
	}
	for _, d := range []string{"tool-1", "tool-2"} {
		os.WriteFile(filepath.Join(root, d, "bin", "run"), nil, 0o755)
	}
	marker := filepath.Join("bin", "run")
	t.Setenv("VELO_TEST_TOOL", "")
	if got, err := InstallDir("VELO_TEST_TOOL", marker, "install it", filepath.Join(root, "tool-*")); err != nil || got != filepath.Join(root, "tool-2") {
		t.Errorf("from the candidates: %q, %v; want tool-2", got, err)
	}
	t.Setenv("VELO_TEST_TOOL", filepath.Join(root, "tool-1"))
	if got, err := InstallDir("VELO_TEST_TOOL", marker, "install it", filepath.Join(root, "tool-*")); err != nil || got != filepath.Join(root, "tool-1") {
		t.Errorf("from the setting: %q, %v; want tool-1", got, err)
	}
	t.Setenv("VELO_TEST_TOOL", filepath.Join(root, "tool-3"))
	if _, err := InstallDir("VELO_TEST_TOOL", marker, "install it", filepath.Join(root, "tool-*")); err == nil || !strings.Contains(err.Error(), "holds no") {
		t.Errorf("a setting without the marker: %v, want an error naming it", err)
	}
	t.Setenv("VELO_TEST_TOOL", "")
	if _, err := InstallDir("VELO_TEST_TOOL", marker, "install it", filepath.Join(root, "none-*")); err == nil || !strings.Contains(err.Error(), "install it") {
		t.Errorf("nothing found: %v, want the advice", err)
	}
}
