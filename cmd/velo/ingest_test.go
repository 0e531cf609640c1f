package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// --cup-profile reads an extract in a region's dialect; without it, the same file is
// refused with a non-zero exit status naming what is missing and the dialect seen.
func TestIngestCUPProfileFlag(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "velo.key")
	mustVelo(t, "keys", "gen", "--out", key)
	// windows-1252, semicolons, upper-case Italian names (À in 0xC0), DD/MM/YYYY, 89,13.
	header := "ID_PRENOTAZIONE;NRE;CODICE_FISCALE_ASSISTITO;COD_PRESTAZIONE;CLASSE_PRIORIT\xc0;PRIMO_ACCESSO;DATA_PRESCRIZIONE;DATA_PRENOTAZIONE;DATA_PRIMA_DISPONIBILIT\xc0;DATA_APPUNTAMENTO;DATA_EROGAZIONE;GARANZIA;COD_STRUTTURA;COD_ASL;COD_REGIONE;CANALE;STATO\r\n"
	src := filepath.Join(dir, "export.csv")
	if err := os.WriteFile(src, []byte(header+"B1;;RSSMRA85T10A562S;89,13;B;S;01/03/2024;02/03/2024;05/03/2024;05/03/2024;;S;120901;120202;120;cup;booked\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustVelo(t, "ingest", "--key", key, "--out", filepath.Join(dir, "data"), "--memory-limit", "256MB",
		"--cup-profile", filepath.Join("..", "..", "ingest", "profiles", "example-regional-export.yaml"), src)
	if !regexp.MustCompile(`booking\s+1\s+1\s+0`).MatchString(out) {
		t.Errorf("summary does not show the booking read and written:\n%s", out)
	}

	// The built-in profile does not know the regional names.
	_, err := velo(t, "ingest", "--key", key, "--out", filepath.Join(dir, "data2"), "--memory-limit", "256MB", src)
	if err == nil || exitCode(err) == 0 {
		t.Fatalf("ingest without the profile: %v (exit %d), want a failure", err, exitCode(err))
	}
	for _, want := range []string{"export.csv", "separator semicolon", "encoding windows-1252", "no column service_code, provider_id, asl, region", "--cup-profile"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// A profile that does not parse is a usage error naming the file and field.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("format: velo-cup-profile/v1\nseparator: ':'\n"), 0o644)
	if _, err := velo(t, "ingest", "--key", key, "--out", filepath.Join(dir, "data3"), "--cup-profile", bad, src); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "separator") {
		t.Errorf("ingest with a bad profile: %v (exit %d), want a usage error naming the separator", err, exitCode(err))
	}
}

// --memory-limit has one default, and --help, docs/ingest.md and the README all say it.
func TestMemoryLimitDefaultDocumented(t *testing.T) {
	help, _ := velo(t, "ingest", "--help")
	m := regexp.MustCompile(`-memory-limit string\n[^\n]*\(default "([^"]+)"\)`).FindStringSubmatch(help)
	if m == nil {
		t.Fatalf("--help does not show --memory-limit's default:\n%s", help)
	}
	def := m[1]
	for _, doc := range []string{filepath.Join("..", "..", "docs", "ingest.md"), filepath.Join("..", "..", "README.md")} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		said := regexp.MustCompile("`?--memory-limit`?[^.\n]*?default:? `?([0-9.]+ ?[KMGT]i?B)").FindAllStringSubmatch(string(b), -1)
		if len(said) == 0 {
			t.Errorf("%s does not state --memory-limit's default", doc)
		}
		for _, s := range said {
			if strings.ReplaceAll(s[1], " ", "") != def {
				t.Errorf("%s says --memory-limit defaults to %s, --help says %s", doc, s[1], def)
			}
		}
	}
}
