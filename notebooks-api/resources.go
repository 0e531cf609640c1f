package notebooksapi

import (
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/velo-fse/velo/dataset"
	"github.com/velo-fse/velo/ledger"
)

// denyAdmin refuses the admin role, which reads no data.
func denyAdmin(u *User) error {
	if u.Role == RoleAdmin {
		return problem(http.StatusForbidden, CodeForbidden, "the admin role manages users and tokens and reads no data")
	}
	return nil
}

// requireDPO refuses every role but the DPO's.
func requireDPO(u *User) error {
	if u.Role != RoleDPO {
		return problem(http.StatusForbidden, CodeForbidden, "only the dpo role may do this")
	}
	return nil
}

// catalog sends the dataset's catalog: all of it to the DPO, and to a researcher or
// official only the tables and columns their projects are approved for (optionally one
// project's, with ?project=).
func (s *Server) catalog(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := denyAdmin(u); err != nil {
		return err
	}
	full := s.eng.Catalog()
	only := r.URL.Query().Get("project")
	setProject(r, only)
	if only != "" && u.Role != RoleDPO && !u.member(only) {
		return problem(http.StatusForbidden, CodeForbidden, "you are not a member of project %q", only)
	}
	if u.Role == RoleDPO && only == "" {
		return writeJSON(w, http.StatusOK, full)
	}
	ids := u.Projects
	if only != "" {
		ids = []string{only}
	}
	var projects []ledger.Project
	for _, id := range ids {
		st, err := s.led.Project(id)
		if errors.Is(err, ledger.ErrUnknownProject) {
			if only != "" {
				return problem(http.StatusNotFound, CodeNotFound, "no project %q", only)
			}
			continue
		}
		if err != nil {
			return err
		}
		projects = append(projects, st.Project)
	}
	return writeJSON(w, http.StatusOK, filterCatalog(full, projects))
}

// filterCatalog keeps the tables and columns any of projects may read, and the domains
// those columns use.
func filterCatalog(full *dataset.Catalog, projects []ledger.Project) dataset.Catalog {
	out := dataset.Catalog{Format: full.Format, DatasetVersion: full.DatasetVersion, Period: full.Period, Tables: []dataset.CatalogTable{}, Domains: map[string]dataset.Domain{}}
	for _, t := range full.Tables {
		ct := t
		ct.Columns = nil
		for _, c := range t.Columns {
			if slices.ContainsFunc(projects, func(p ledger.Project) bool { return p.Allows(t.Name, c.Name) }) {
				ct.Columns = append(ct.Columns, c)
				if c.Domain != "" {
					if d, ok := full.Domains[c.Domain]; ok {
						out.Domains[c.Domain] = d
					}
				}
			}
		}
		if len(ct.Columns) > 0 {
			out.Tables = append(out.Tables, ct)
		}
	}
	return out
}

// listProjects sends the caller's projects (every project to the DPO) with their budgets.
func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := denyAdmin(u); err != nil {
		return err
	}
	all := s.led.Projects()
	if u.Role != RoleDPO {
		all = slices.DeleteFunc(all, func(p ledger.ProjectStatus) bool { return !u.member(p.ID) })
	}
	if all == nil {
		all = []ledger.ProjectStatus{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"projects": all})
}

// getProject sends one project with its budget: total, spent, left, expiry. A researcher
// or official asking about a project that is not theirs is refused whether it exists or not.
func (s *Server) getProject(w http.ResponseWriter, r *http.Request, u *User) error {
	id, err := projectMember(r, u)
	if err != nil {
		return err
	}
	st, err := s.led.Project(id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

// ProjectRequest is the body of POST /v1/projects: a project as the DPO approves it.
type ProjectRequest struct {
	ID                 string              `json:"id"`
	Purpose            string              `json:"purpose"`
	LegalBasis         string              `json:"legal_basis"`
	Approver           string              `json:"approver,omitempty"`
	Allow              map[string][]string `json:"allow"`
	EpsilonBudget      float64             `json:"epsilon_budget"`
	DeltaBudget        float64             `json:"delta_budget"`
	DefaultEpsilon     float64             `json:"default_epsilon,omitempty"`
	DefaultDelta       float64             `json:"default_delta,omitempty"`
	MaxEpsilonPerQuery float64             `json:"max_epsilon_per_query,omitempty"`
	MaxDeltaPerQuery   float64             `json:"max_delta_per_query,omitempty"`
	Expires            time.Time           `json:"expires,omitzero"`
	// OutputPolicy is disclosure control applied after DP (docs/governance.md#output-policy).
	OutputPolicy *ledger.OutputPolicy `json:"output_policy,omitempty"`
	// The data permit (docs/governance.md): required to request a project, optional when
	// the DPO creates one.
	PermitID    string    `json:"permit_id,omitempty"`
	IssuingBody string    `json:"issuing_body,omitempty"`
	Holder      string    `json:"holder,omitempty"`
	ValidFrom   time.Time `json:"valid_from,omitzero"`
}

// createProject appends a project to the ledger (DPO only).
func (s *Server) createProject(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := requireDPO(u); err != nil {
		return err
	}
	var req ProjectRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	setProject(r, req.ID)
	if req.Approver == "" {
		req.Approver = u.Name
	}
	if err := s.led.CreateProject(r.Context(), "user:"+u.Name, ledgerProject(req)); err != nil {
		return err
	}
	st, err := s.led.Project(req.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/projects/"+req.ID)
	return writeJSON(w, http.StatusCreated, st)
}

// GrantRequest is the body of POST /v1/projects/{id}/grants.
type GrantRequest struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
	Reason  string  `json:"reason,omitempty"`
}

// grant adds budget to a project (DPO only).
func (s *Server) grant(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := requireDPO(u); err != nil {
		return err
	}
	id := r.PathValue("id")
	setProject(r, id)
	var req GrantRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if _, err := s.led.Project(id); err != nil {
		return err
	}
	if req.Epsilon == 0 && req.Delta == 0 {
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Detail: "epsilon: give epsilon, delta or both", Field: "epsilon"}
	}
	if err := s.led.Grant(r.Context(), "user:"+u.Name, id, ledger.Budget{Epsilon: req.Epsilon, Delta: req.Delta}, req.Reason); err != nil {
		return err
	}
	st, err := s.led.Project(id)
	if err != nil {
		return err
	}
	logExtra(r, "grant_epsilon", req.Epsilon, "grant_delta", req.Delta)
	return writeJSON(w, http.StatusOK, st)
}

// LedgerPage is the body of GET /v1/ledger.
type LedgerPage struct {
	Entries []ledger.Entry `json:"entries"`
	// NextSinceSeq is the since_seq that asks for the entries after these.
	NextSinceSeq uint64 `json:"next_since_seq"`
	More         bool   `json:"more"`
}

// ledgerEntries sends ledger entries after since_seq, of one project or all (DPO only).
func (s *Server) ledgerEntries(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := requireDPO(u); err != nil {
		return err
	}
	project := r.URL.Query().Get("project")
	setProject(r, project)
	since, limit, err := pageParams(r, 1000, 10000)
	if err != nil {
		return err
	}
	if project != "" {
		if _, err := s.led.Project(project); err != nil {
			return err
		}
	}
	entries := s.led.Entries(project, since)
	page := LedgerPage{Entries: entries, NextSinceSeq: since}
	if uint64(len(entries)) > limit {
		page.Entries, page.More = entries[:limit], true
	}
	if page.Entries == nil {
		page.Entries = []ledger.Entry{}
	}
	if n := len(page.Entries); n > 0 {
		page.NextSinceSeq = page.Entries[n-1].Seq
	}
	return writeJSON(w, http.StatusOK, page)
}

// pageParams are a page's since_seq (default 0) and limit (default def, 1..maxLimit).
func pageParams(r *http.Request, def, maxLimit uint64) (since, limit uint64, err error) {
	q := r.URL.Query()
	if since, err = uintParam(q.Get("since_seq"), "since_seq", 0, 0); err != nil {
		return 0, 0, err
	}
	limit, err = uintParam(q.Get("limit"), "limit", def, maxLimit)
	return since, limit, err
}

func uintParam(v, name string, def, maxV uint64) (uint64, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || (maxV > 0 && (n == 0 || n > maxV)) {
		p := problem(http.StatusBadRequest, CodeInvalidRequest, "%s: want a whole number", name)
		if maxV > 0 {
			p = problem(http.StatusBadRequest, CodeInvalidRequest, "%s: want a whole number from 1 to %d", name, maxV)
		}
		p.Field = name
		return 0, p
	}
	return n, nil
}

// VerifyResult is the body of GET /v1/ledger/verify.
type VerifyResult struct {
	OK          bool                   `json:"ok"`
	Entries     int                    `json:"entries"`
	Bytes       int64                  `json:"bytes"`
	Head        string                 `json:"head"`
	Kinds       map[string]int         `json:"kinds"`
	Checkpoints int                    `json:"checkpoints"`
	Signed      uint64                 `json:"signed"`
	Recoveries  int                    `json:"recoveries"`
	Projects    []ledger.ProjectStatus `json:"projects"`
	Anomaly     *Anomaly               `json:"anomaly,omitempty"`
}

// Anomaly is what verification found wrong.
type Anomaly struct {
	File   string `json:"file"`
	Seq    uint64 `json:"seq,omitempty"`
	Offset int64  `json:"offset"`
	Reason string `json:"reason"`
	Torn   bool   `json:"torn,omitempty"`
}

// verify checks the ledger's chain, budgets and signed checkpoints (DPO only). A ledger
// that fails is a 200 with ok false and the anomaly: the check itself worked.
func (s *Server) verify(w http.ResponseWriter, r *http.Request, u *User) error {
	if err := requireDPO(u); err != nil {
		return err
	}
	res, err := s.runVerify()
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) runVerify() (VerifyResult, error) {
	rep, err := s.verifyFn()
	res := VerifyResult{OK: err == nil, Entries: rep.Entries, Bytes: rep.Bytes, Head: rep.Head, Kinds: rep.Kinds,
		Checkpoints: rep.Checkpoints, Signed: rep.Signed, Recoveries: rep.Recoveries, Projects: rep.Projects}
	if res.Kinds == nil {
		res.Kinds = map[string]int{}
	}
	if res.Projects == nil {
		res.Projects = []ledger.ProjectStatus{}
	}
	var ce *ledger.CorruptError
	switch {
	case err == nil:
	case errors.As(err, &ce):
		res.Anomaly = &Anomaly{File: filepath.Base(ce.File), Seq: ce.Seq, Offset: ce.Offset, Reason: ce.Reason, Torn: ce.Torn}
	default:
		return VerifyResult{}, err
	}
	return res, nil
}

// Me is the body of GET /v1/me.
type Me struct {
	User     string   `json:"user"`
	Role     Role     `json:"role"`
	Projects []string `json:"projects"`
}

// me says who the token belongs to: any role.
func (s *Server) me(w http.ResponseWriter, r *http.Request, u *User) error {
	projects := slices.Clone(u.Projects)
	if projects == nil {
		projects = []string{}
	}
	return writeJSON(w, http.StatusOK, Me{User: u.Name, Role: u.Role, Projects: projects})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapiJSON)
	return nil
}
