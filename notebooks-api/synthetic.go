package notebooksapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/velo-fse/velo/query"
)

// dataEngine is what the marginals and synthetic-data routes need of the engine
// (query.Engine has it).
type dataEngine interface {
	Marginals(ctx context.Context, req query.MarginalsRequest) (*query.MarginalsRelease, error)
	Synthesize(ctx context.Context, req query.SynthesizeRequest) (*query.Synthetic, error)
}

// MarginalsRequest is the body of POST /v1/marginals.
type MarginalsRequest struct {
	Project string `json:"project"`
	Table   string `json:"table"`
	// Join are tables of one row per person (person) joined to Table on pid; their
	// columns are named table.column ("person.birth_year").
	Join []string `json:"join,omitempty"`
	// Marginals are the attribute sets, each 1 to 3 column names: [["region"], ["priority", "wait_days"]].
	Marginals            [][]string `json:"marginals"`
	Epsilon              *float64   `json:"epsilon,omitempty"`
	Delta                *float64   `json:"delta,omitempty"`
	Bins                 int        `json:"bins,omitempty"`
	MaxGroupsContributed int        `json:"max_groups_contributed,omitempty"`
	MaxRowsPerGroup      int        `json:"max_rows_per_group,omitempty"`
	// DryRun validates and prices the request, with each table's noise and interval
	// half-width: no charge, no data read, no cells.
	DryRun bool `json:"dry_run,omitempty"`
}

// SyntheticRequest is the body of POST /v1/synthetic.
type SyntheticRequest struct {
	Project string `json:"project"`
	Table   string `json:"table"`
	// Join are tables of one row per person joined to Table on pid: each synthetic row is a
	// row of Table with its person's attributes.
	Join []string `json:"join,omitempty"`
	// Columns default to every approved column of the table (and of the joined tables, as
	// table.column) with a public domain.
	Columns []string `json:"columns,omitempty"`
	Method  string   `json:"method,omitempty"` // aim (default) or mst
	Rows    int      `json:"rows,omitempty"`   // 0: the model's noisy total
	Epsilon *float64 `json:"epsilon,omitempty"`
	Delta   *float64 `json:"delta,omitempty"`
	Bins    int      `json:"bins,omitempty"`
	// MaxRowsPerPerson is k of the default bounding (person_rows; 0: 1).
	MaxRowsPerPerson     int `json:"max_rows_per_person,omitempty"`
	MaxGroupsContributed int `json:"max_groups_contributed,omitempty"`
	MaxRowsPerGroup      int `json:"max_rows_per_group,omitempty"`
}

// SyntheticJSON is the JSON answer of POST /v1/synthetic: the release record (with the
// utility report) and the rows as a Parquet file, base64-encoded.
type SyntheticJSON struct {
	Release *query.Synthetic `json:"release"`
	Parquet []byte           `json:"parquet"`
}

const mediaParquet = "application/vnd.apache.parquet"

// dataCaller checks what the two routes share: the role, the project and the membership.
func (s *Server) dataCaller(r *http.Request, u *User, project, table string) (dataEngine, error) {
	setProject(r, project)
	de, ok := s.eng.(dataEngine)
	switch {
	case !u.Role.queries():
		s.metrics.refusal(CodeForbidden)
		return nil, problem(http.StatusForbidden, CodeForbidden, "the %s role cannot request data releases", u.Role)
	case project == "":
		return nil, &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Detail: "project is required", Field: "project"}
	case strings.TrimSpace(table) == "":
		return nil, &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Detail: "table is required", Field: "table"}
	case !u.member(project):
		s.metrics.refusal(CodeForbidden)
		return nil, problem(http.StatusForbidden, CodeForbidden, "you are not a member of project %q", project)
	case !ok:
		return nil, problem(http.StatusInternalServerError, CodeInternal, "this server's engine cannot release marginals or synthetic data")
	}
	return de, nil
}

// marginals releases DP contingency tables: JSON (the release) or, with Accept: text/csv,
// application/vnd.apache.arrow.stream or application/vnd.apache.parquet, one row per cell.
func (s *Server) marginals(w http.ResponseWriter, r *http.Request, u *User) error {
	media, err := negotiate(r.Header.Get("Accept"), mediaParquet)
	if err != nil {
		return err
	}
	var req MarginalsRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	de, err := s.dataCaller(r, u, req.Project, req.Table)
	if err != nil {
		return err
	}
	if len(req.Marginals) == 0 {
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Detail: "marginals is required: a list of attribute sets, e.g. [[\"region\"], [\"priority\", \"wait_days\"]]", Field: "marginals"}
	}
	s.queries.Add(1)
	rel, err := de.Marginals(r.Context(), query.MarginalsRequest{
		Project: req.Project, Actor: "user:" + u.Name, Table: req.Table, Join: req.Join, Sets: req.Marginals,
		Bins: req.Bins, Epsilon: req.Epsilon, Delta: req.Delta, MaxGroupsContributed: req.MaxGroupsContributed, MaxRowsPerGroup: req.MaxRowsPerGroup,
		DryRun: req.DryRun,
	})
	s.queries.Done()
	if err != nil {
		if p := asProblem(err); p.Status < 500 {
			s.metrics.refusal(p.Code)
		}
		return err
	}
	outcome := "released"
	switch {
	case rel.DryRun:
		outcome = "dry_run"
	case rel.Cached:
		outcome = "cached"
	}
	logExtra(r, "release_id", rel.ReleaseID, "outcome", outcome, "epsilon", rel.Epsilon, "delta", rel.Delta, "format", media)
	var buf bytes.Buffer
	ct := mediaJSON
	switch media {
	case mediaCSV:
		ct = "text/csv; charset=utf-8"
		err = rel.WriteCSV(&buf)
	case mediaArrow:
		ct = mediaArrow
		err = writeMarginalsArrow(&buf, rel)
	case mediaParquet:
		ct = mediaParquet
		err = writeMarginalsParquet(&buf, rel)
	default:
		err = json.NewEncoder(&buf).Encode(rel)
	}
	if err != nil {
		return fmt.Errorf("encode marginals %s: %w", rel.ReleaseID, err)
	}
	return send(w, ct, buf.Bytes(), rel.ReleaseID)
}

// synthetic releases DP synthetic microdata: the Parquet file (Accept:
// application/vnd.apache.parquet, the default) with the release and utility report in its
// metadata and headers, or JSON holding both.
func (s *Server) synthetic(w http.ResponseWriter, r *http.Request, u *User) error {
	media := mediaParquet
	if a := r.Header.Get("Accept"); strings.Contains(a, mediaJSON) && !strings.Contains(a, mediaParquet) {
		media = mediaJSON
	} else if a != "" && !strings.Contains(a, mediaParquet) && !strings.Contains(a, "*/*") {
		return problem(http.StatusNotAcceptable, CodeNotAcceptable, "synthetic data is available as %s or %s", mediaParquet, mediaJSON)
	}
	var req SyntheticRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	de, err := s.dataCaller(r, u, req.Project, req.Table)
	if err != nil {
		return err
	}
	s.queries.Add(1)
	syn, err := de.Synthesize(r.Context(), query.SynthesizeRequest{
		Project: req.Project, Actor: "user:" + u.Name, Table: req.Table, Join: req.Join, Columns: req.Columns, Method: req.Method,
		Rows: req.Rows, Bins: req.Bins, Epsilon: req.Epsilon, Delta: req.Delta, MaxRowsPerPerson: req.MaxRowsPerPerson,
		MaxGroupsContributed: req.MaxGroupsContributed, MaxRowsPerGroup: req.MaxRowsPerGroup,
	})
	s.queries.Done()
	if err != nil {
		if p := asProblem(err); p.Status < 500 {
			s.metrics.refusal(p.Code)
		}
		return err
	}
	logExtra(r, "release_id", syn.ReleaseID, "outcome", "released", "epsilon", syn.Epsilon, "delta", syn.Delta, "format", media)
	var pq bytes.Buffer
	if err := syn.WriteParquet(&pq); err != nil {
		return fmt.Errorf("encode synthetic %s: %w", syn.ReleaseID, err)
	}
	if media == mediaJSON {
		b, err := json.Marshal(SyntheticJSON{Release: syn, Parquet: pq.Bytes()})
		if err != nil {
			return err
		}
		return send(w, mediaJSON, append(b, '\n'), syn.ReleaseID)
	}
	w.Header().Set("Velo-Mean-TVD", strconv.FormatFloat(syn.Utility.MeanTVD, 'g', 6, 64))
	w.Header().Set("Content-Disposition", `attachment; filename="`+syn.Table+`-synthetic.parquet"`)
	return send(w, mediaParquet, pq.Bytes(), syn.ReleaseID)
}

func send(w http.ResponseWriter, ct string, body []byte, releaseID string) error {
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Velo-Release-Id", releaseID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}
