package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/velo-fse/velo/ingest"
)

// cupRecords are bookings in Velo's canonical columns (bookingHeader's order), every one
// valid but the last, whose d_contact is not a date.
func cupRecords(t *testing.T) [][]string {
	giuseppe := cf(t, "VRDGPP80A01H501")
	return [][]string{
		{"B1", "120A00000000001", "RSSMRA85T10A562S", "89.7A.3", "U", "true", "2024-03-01", "2024-03-01", "2024-03-03", "2024-03-03", "2024-03-03", "true", "120901", "120201", "120", "cup", "delivered"},
		{"B2", "120A00000000002", giuseppe, "89.13", "D", "S", "2024-03-01", "2024-03-02", "2024-04-16", "2024-04-16", "", "SI", "120901", "120202", "120", "phone", "booked"},
		{"B3", "", giuseppe, "87.41", "", "N", "2024-03-01", "2024-03-02", "2024-03-20", "2024-03-20", "", "1", "120901", "120202", "120", "online", "booked"},
		{"B4", "", giuseppe, "89.13", "B", "true", "2024-03-01", "2024-02-30", "2024-03-05", "2024-03-05", "", "true", "120901", "120202", "120", "cup", "booked"},
	}
}

// cupFile writes records under header, separated by sep, with each date and service code
// as a dialect writes them.
func cupFile(header []string, records [][]string, sep, eol string, date, code func(string) string) string {
	var b strings.Builder
	b.WriteString(strings.Join(header, sep) + eol)
	for _, r := range records {
		r = append([]string(nil), r...)
		for i := 6; i <= 10; i++ {
			if r[i] != "" {
				r[i] = date(r[i])
			}
		}
		r[3] = code(r[3])
		b.WriteString(strings.Join(r, sep) + eol)
	}
	return b.String()
}

func iso(s string) string { return s }

// dmy writes 2024-03-01 as 01/03/2024.
func dmy(s string) string {
	p := strings.Split(s, "-")
	return p[2] + "/" + p[1] + "/" + p[0]
}

// commaCode writes a numeric nomenclatore code as an Italian spreadsheet does (89,13).
func commaCode(s string) string {
	if strings.Trim(strings.Replace(s, ".", "", 1), "0123456789") == "" {
		return strings.Replace(s, ".", ",", 1)
	}
	return s
}

// cp1252 encodes text (Latin-1 letters only) as windows-1252.
func cp1252(s string) string {
	var b []byte
	for _, r := range s {
		if r > 0xff {
			panic("not Latin-1")
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// CUP extracts in the dialects regions export — semicolons, tabs, vertical bars, Italian or
// upper-case header names, windows-1252 (read by the built-in profile), DD/MM/YYYY dates
// and decimal commas (declared in a profile) — are read as the canonical file is: the same
// booking rows, the same quarantine reason. Before profiles, each of them was skipped
// (exit status 0) as of no known format.
func TestCUPDialects(t *testing.T) {
	ps, _ := testKey(t)
	records := cupRecords(t)
	canonical := strings.Split(strings.TrimSpace(bookingHeader), ",")
	italian := []string{"id_prenotazione", "nre", "codice_fiscale", "codice_prestazione", "classe_priorita", "primo_accesso", "data_prescrizione", "data_prenotazione", "data_prima_disponibilita", "data_appuntamento", "data_erogazione", "garanzia", "codice_struttura", "asl", "regione", "canale", "stato"}
	accented := []string{"Id Prenotazione", "NRE", "Codice Fiscale", "Codice Prestazione", "Classe Priorità", "Primo Accesso", "Data Prescrizione", "Data Prenotazione", "Data Prima Disponibilità", "Data Appuntamento", "Data Erogazione", "Garanzia", "Codice Struttura", "ASL", "Regione", "Canale", "Stato"}
	regional := []string{"ID_PRENOTAZIONE", "NRE", "CODICE_FISCALE_ASSISTITO", "COD_PRESTAZIONE", "CLASSE_PRIORITÀ", "PRIMO_ACCESSO", "DATA_PRESCRIZIONE", "DATA_PRENOTAZIONE", "DATA_PRIMA_DISPONIBILITÀ", "DATA_APPUNTAMENTO", "DATA_EROGAZIONE", "GARANZIA", "COD_STRUTTURA", "COD_ASL", "COD_REGIONE", "CANALE", "STATO"}
	upper := make([]string, len(canonical))
	for i, c := range canonical {
		upper[i] = strings.ToUpper(c)
	}
	// The regional export's columns come in another order.
	reorder := func(h []string, recs [][]string) ([]string, [][]string) {
		perm := []int{16, 0, 2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
		h2 := make([]string, len(h))
		r2 := make([][]string, len(recs))
		for i, j := range perm {
			h2[i] = h[j]
		}
		for k, r := range recs {
			r2[k] = make([]string, len(r))
			for i, j := range perm {
				r2[k][i] = r[j]
			}
		}
		return h2, r2
	}
	ref := cupFile(canonical, records, ",", "\n", iso, iso)
	// cupFile formats the canonical positions 3 and 6–10: reorder after formatting.
	regionalText := func() string {
		formatted := strings.Split(strings.TrimSpace(cupFile(regional, records, "\x00", "\n", dmy, commaCode)), "\n")
		var rows [][]string
		for _, l := range formatted {
			rows = append(rows, strings.Split(l, "\x00"))
		}
		h, recs := reorder(rows[0], rows[1:])
		var b strings.Builder
		b.WriteString(strings.Join(h, ";") + "\r\n")
		for _, r := range recs {
			b.WriteString(strings.Join(r, ";") + "\r\n")
		}
		return cp1252(b.String())
	}()
	tests := []struct {
		name, text, profile string
	}{
		{"semicolons, Italian names", cupFile(italian, records, ";", "\n", iso, iso), ""},
		{"tabs, upper-case names", cupFile(upper, records, "\t", "\n", iso, iso), ""},
		{"UTF-8 with a byte-order mark, vertical bars", "\ufeff" + cupFile(canonical, records, "|", "\r\n", iso, iso), ""},
		{"windows-1252, accented Italian names, semicolons", cp1252(cupFile(accented, records, ";", "\r\n", iso, iso)), ""},
		{"DD/MM/YYYY and decimal commas declared in a profile", cupFile(canonical, records, ";", "\n", dmy, commaCode), "dmy"},
		{"the example regional export profile", regionalText, filepath.Join("profiles", "example-regional-export.yaml")},
	}
	refDir := filepath.Join(t.TempDir(), "ref")
	refMan := runIngest(t, ingest.Config{Pseudonymizer: ps, Out: refDir, Inputs: []string{writeFile(t, t.TempDir(), "ref.csv", ref)}})
	db := openDB(t)
	want := sortedLines(queryStrings(t, db, "SELECT * FROM "+table(refDir, "booking"))...)
	if len(want) != 3 || refMan.Tables["booking"].Quarantined != 1 {
		t.Fatalf("the canonical file gave %d rows and %+v, want 3 rows and 1 quarantined", len(want), refMan.Tables["booking"])
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ingest.Config{Pseudonymizer: ps, Out: filepath.Join(t.TempDir(), "data"), Inputs: []string{writeFile(t, t.TempDir(), "export.csv", tt.text)}}
			if tt.profile == "dmy" {
				tt.profile = writeFile(t, t.TempDir(), "dmy.yaml", "format: velo-cup-profile/v1\nname: Italian dates\ndates: [DD/MM/YYYY]\ndecimal: \",\"\n")
			}
			if tt.profile != "" {
				p, err := ingest.LoadCUPProfile(tt.profile)
				if err != nil {
					t.Fatal(err)
				}
				cfg.CUPProfile = p
			}
			man := runIngest(t, cfg)
			assertReconciles(t, db, cfg.Out, man)
			if in := man.Batches[0].Inputs[0]; in.Format != "cup-csv" || in.Skipped != "" {
				t.Fatalf("read as %+v, want a CUP extract", in)
			}
			got := sortedLines(queryStrings(t, db, "SELECT * FROM "+table(cfg.Out, "booking"))...)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("bookings, canonical file (-) against this dialect (+):\n%s", diff)
			}
			q := quarantineLines(t, cfg.Out, man)
			if len(q) != 1 || q[0]["position"] != "line 5" || !strings.HasPrefix(q[0]["reason"], "d_contact: malformed date (want ") {
				t.Errorf("quarantine %v, want line 5's d_contact", q)
			}
		})
	}
}

// A file taken for a CUP extract whose header cannot be mapped to every booking column is
// an error (the ingest fails) that names the file, the missing columns, the separator
// and encoding seen, the profile, and the header names that matched nothing. Before, a
// semicolon-separated extract was skipped with exit status 0, naming none of that.
func TestCUPHeaderThatCannotBeMapped(t *testing.T) {
	ps, _ := testKey(t)
	header := "id_prenotazione;codice_fiscale;CF_PAZIENTE_RSSMRA85T10A562S;codice_prestazione;classe_priorita;primo_accesso;data_prescrizione;data_prenotazione;data_prima_disponibilita;data_appuntamento;garanzia;codice_struttura;asl;regione;canale;stato\n"
	src := writeFile(t, t.TempDir(), "export.csv", header+"B1;RSSMRA85T10A562S;;89.13;B;S;01/03/2024;02/03/2024;05/03/2024;05/03/2024;S;120901;120202;120;cup;booked\n")
	out := filepath.Join(t.TempDir(), "data")
	_, err := ingest.Run(context.Background(), ingest.Config{Pseudonymizer: ps, Out: out, Inputs: []string{src}, MemoryLimit: "256MB"})
	if err == nil {
		t.Fatal("Run succeeded, want the header refused")
	}
	for _, want := range []string{"export.csv", "separator semicolon", "encoding utf-8", "built-in", "no column rx_id, d_delivered", `"CF_PAZIENTE_`, "--cup-profile"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "RSSMRA85T10A562S") {
		t.Errorf("error %q quotes an identifier-shaped header name", err)
	}
	if _, serr := os.Stat(filepath.Join(out, "manifest.json")); serr == nil {
		t.Errorf("a dataset was written despite the error")
	}
}

// Delimited text that names too few booking columns to be an extract is skipped, and the
// manifest (and the log) say why and what to do if it is one.
func TestDelimitedFileSkippedWithHint(t *testing.T) {
	in := t.TempDir()
	writeFile(t, in, "tariffe.csv", "codice;descrizione;tariffa;note\n89.13;Visita neurologica;20,66;\n")
	man := runIngest(t, ingest.Config{Inputs: []string{in}})
	skipped := man.Batches[0].Inputs[0].Skipped
	for _, want := range []string{"delimited text (separator semicolon, encoding utf-8, 4 columns)", "fewer than 3 CUP booking columns", "--cup-profile"} {
		if !strings.Contains(skipped, want) {
			t.Errorf("skipped %q, want it to say %q", skipped, want)
		}
	}
}

// A profile is checked when it is read: every error names the file and the field.
func TestCUPProfileErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"format", "format: velo-cup-profile/v2\n", "format: \"velo-cup-profile/v2\", want velo-cup-profile/v1"},
		{"separator", "format: velo-cup-profile/v1\nseparator: ':'\n", "separator: \":\""},
		{"encoding", "format: velo-cup-profile/v1\nencoding: utf-16\n", "encoding: \"utf-16\""},
		{"dates", "format: velo-cup-profile/v1\ndates: [MM/DD/YYYY]\n", "dates: \"MM/DD/YYYY\""},
		{"decimal", "format: velo-cup-profile/v1\nseparator: ','\ndecimal: ','\n", "decimal: \",\" is also the separator"},
		{"column", "format: velo-cup-profile/v1\ncolumns:\n  codice_fiscale: [CF]\n", "columns: \"codice_fiscale\" is not a booking column"},
		{"ambiguous name", "format: velo-cup-profile/v1\ncolumns:\n  d_contact: [DATA]\n  d_appointment: [data]\n", "stands for both"},
		{"unknown field", "format: velo-cup-profile/v1\nseparators: ';'\n", "field separators not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "profile.yaml", tt.yaml)
			_, err := ingest.LoadCUPProfile(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadCUPProfile: %v, want an error naming %s and saying %q", err, path, tt.want)
			}
		})
	}
}

// The built-in profile and the example are valid, and docs/ingest.md shows the example
// as it is in the repository.
func TestCUPProfilesShipped(t *testing.T) {
	if p := ingest.DefaultCUPProfile(); p.Name != "built-in" {
		t.Errorf("built-in profile named %q", p.Name)
	}
	example, err := os.ReadFile(filepath.Join("profiles", "example-regional-export.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.ParseCUPProfile(example, "example"); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "ingest.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), string(example)) {
		t.Errorf("docs/ingest.md does not show ingest/profiles/example-regional-export.yaml as it is")
	}
}
