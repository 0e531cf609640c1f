package notebooksapi

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/velo-fse/velo/ledger"
	"github.com/velo-fse/velo/query"
)

// Config is the server's configuration file (velo.yaml). docs/api.md documents every
// option; LoadConfig validates them and names the field at fault.
type Config struct {
	// Data is the dataset directory written by velo ingest (relative paths are relative to
	// the config file).
	Data string `yaml:"data"`
	// State is the ledger's state directory; the server holds its lock while it runs.
	State string `yaml:"state"`
	// CheckpointKey is the ledger's checkpoint signing key (default STATE/checkpoint.key).
	CheckpointKey string `yaml:"checkpoint_key,omitempty"`
	// Ledger, when set, is a postgres:// URL: the ledger is kept in that PostgreSQL
	// database, shared by several servers (replicas), instead of in STATE; STATE then holds
	// only the checkpoint key, which every replica must share (docs/design.md).
	Ledger string `yaml:"ledger,omitempty"`
	// Listen is the address to serve on when --addr is not given (default 127.0.0.1:8080).
	Listen string `yaml:"listen,omitempty"`
	// CookieSecure marks the ledger page's session cookie Secure: set it when a TLS proxy
	// fronts the server.
	CookieSecure bool   `yaml:"cookie_secure,omitempty"`
	Limits       Limits `yaml:"limits,omitempty"`
	Users        []User `yaml:"users"`
	// OIDC is the organisation's OpenID provider (docs/identity.md).
	OIDC *OIDCConfig `yaml:"oidc,omitempty"`
	// AccessLog sets the access log's retention (docs/identity.md).
	AccessLog AccessLogConfig `yaml:"access_log,omitempty"`
	// Engine computes the dataset's exact per-group totals: "duckdb" (the default, embedded)
	// or "spark" (a Spark cluster through Spark Connect, configured by Spark; docs/scale.md).
	Engine string      `yaml:"engine,omitempty"`
	Spark  SparkConfig `yaml:"spark,omitempty"`
}

// SparkConfig is the Spark engine's configuration (engine: spark).
type SparkConfig struct {
	// Connect is the Spark Connect server's address, host:port or sc://host:port.
	Connect string `yaml:"connect"`
	// DataURI is the data directory as the cluster reads it (default: data's absolute path,
	// for a cluster that mounts it at the same path).
	DataURI string `yaml:"data_uri,omitempty"`
}

// Limits bound what one request and the server as a whole may use. Zero values take the
// defaults documented in docs/api.md.
type Limits struct {
	MaxConcurrentQueries int           `yaml:"max_concurrent_queries,omitempty"` // queries reading data at once, enforced by the engine; default 4
	QueueTimeout         time.Duration `yaml:"queue_timeout,omitempty"`          // wait for a query slot before 429; default 2s, negative: none
	QueryTimeout         time.Duration `yaml:"query_timeout,omitempty"`          // per query, enforced by the engine; default 60s
	MemoryLimit          string        `yaml:"memory_limit,omitempty"`           // DuckDB memory_limit; default 2GB
	Threads              int           `yaml:"threads,omitempty"`                // DuckDB threads; default 2
	MaxRequestBytes      int64         `yaml:"max_request_bytes,omitempty"`      // request body; default 1 MiB
	ReadTimeout          time.Duration `yaml:"read_timeout,omitempty"`           // whole request; default 30s
	IdleTimeout          time.Duration `yaml:"idle_timeout,omitempty"`           // keep-alive; default 120s
	ShutdownTimeout      time.Duration `yaml:"shutdown_timeout,omitempty"`       // graceful stop; default query_timeout + 10s
	SessionTTL           time.Duration `yaml:"session_ttl,omitempty"`            // ledger page login; default 8h
	// Failed authentications per client address before it is refused (429) for one
	// auth_failure_window (authlimit.go); default 10 per minute, negative: no limit.
	MaxAuthFailures   int           `yaml:"max_auth_failures,omitempty"`
	AuthFailureWindow time.Duration `yaml:"auth_failure_window,omitempty"`
	// The DPO page alerts on a project that has spent this share of its epsilon or delta
	// budget (permits.go); default 0.8.
	BudgetAlertShare float64 `yaml:"budget_alert_share,omitempty"`
}

// withDefaults fills in the zero values.
func (l Limits) withDefaults() Limits {
	if l.MaxConcurrentQueries == 0 {
		l.MaxConcurrentQueries = 4
	}
	if l.QueueTimeout == 0 {
		l.QueueTimeout = 2 * time.Second
	}
	if l.QueryTimeout == 0 {
		l.QueryTimeout = 60 * time.Second
	}
	if l.MemoryLimit == "" {
		l.MemoryLimit = "2GB"
	}
	if l.Threads == 0 {
		l.Threads = 2
	}
	if l.MaxRequestBytes == 0 {
		l.MaxRequestBytes = 1 << 20
	}
	if l.ReadTimeout == 0 {
		l.ReadTimeout = 30 * time.Second
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = 120 * time.Second
	}
	if l.ShutdownTimeout == 0 {
		l.ShutdownTimeout = l.QueryTimeout + 10*time.Second
	}
	if l.SessionTTL == 0 {
		l.SessionTTL = 8 * time.Hour
	}
	if l.MaxAuthFailures == 0 {
		l.MaxAuthFailures = 10
	}
	if l.AuthFailureWindow == 0 {
		l.AuthFailureWindow = time.Minute
	}
	if l.BudgetAlertShare == 0 {
		l.BudgetAlertShare = 0.8
	}
	return l
}

// QueryLimits are the engine's limits (per-query timeout, DuckDB memory and threads, query
// slots and how long to wait for one) with the defaults applied.
func (l Limits) QueryLimits() query.Limits {
	l = l.withDefaults()
	return query.Limits{MemoryLimit: l.MemoryLimit, Threads: l.Threads, Timeout: l.QueryTimeout,
		MaxConcurrent: l.MaxConcurrentQueries, QueueTimeout: l.QueueTimeout}
}

// Role is what a user may do (docs/api.md#roles).
type Role string

// Roles.
const (
	// RoleResearcher queries, and reads the catalog and budgets of, their projects.
	RoleResearcher Role = "researcher"
	// RoleOfficial is the service identity of a Grafana data source: the same as a
	// researcher, for its dashboard projects, charged like anyone.
	RoleOfficial Role = "official"
	// RoleDPO reads every project, the catalog and the ledger, verifies it, creates
	// projects and grants budget; it cannot query.
	RoleDPO Role = "dpo"
	// RoleAdmin manages users and tokens (in the config file, with velo token) and reads
	// no data.
	RoleAdmin Role = "admin"
)

// queries reports whether the role may send queries.
func (r Role) queries() bool { return r == RoleResearcher || r == RoleOfficial }

// User is a person or service identity with a role, its projects, and the hashes of its
// tokens.
type User struct {
	Name     string   `yaml:"name"`
	Role     Role     `yaml:"role"`
	Projects []string `yaml:"projects,omitempty"`
	Tokens   []Token  `yaml:"tokens,omitempty"`
}

// Token is a stored token: only its SHA-256, never the token.
type Token struct {
	SHA256  string    `yaml:"sha256"`
	Created time.Time `yaml:"created,omitempty"`
}

// member reports whether u may act for project.
func (u *User) member(project string) bool {
	return u.Role.queries() && slices.Contains(u.Projects, project)
}

var (
	userNamePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
	projectIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	sha256Pattern    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// FieldError is an invalid configuration value; Field is its path in the file
// ("users[2].role").
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// LoadConfig reads and validates a config file. Relative data, state and checkpoint_key
// paths are resolved against the file's directory.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	base := filepath.Dir(path)
	if cfg.OIDC != nil {
		if err := cfg.OIDC.loadSecret(base); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	for _, p := range []*string{&cfg.Data, &cfg.State, &cfg.CheckpointKey} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return cfg, nil
}

// ParseConfig decodes and validates a config document. Unknown fields are errors, so a
// misspelt option is never silently ignored.
func ParseConfig(b []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// Validate checks every field and returns a *FieldError naming the first at fault.
func (c *Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Data) == "":
		return &FieldError{"data", "required: the dataset directory written by velo ingest"}
	case strings.TrimSpace(c.State) == "":
		return &FieldError{"state", "required: the ledger's state directory"}
	case c.Ledger != "" && !ledger.IsPostgres(c.Ledger):
		return &FieldError{"ledger", "want a postgres:// or postgresql:// URL (or leave it out: the ledger in the state directory)"}
	case c.Engine != "" && c.Engine != query.DialectDuckDB && c.Engine != query.DialectSpark:
		return &FieldError{"engine", fmt.Sprintf("%q: want duckdb (the default) or spark", c.Engine)}
	case c.Engine == query.DialectSpark && strings.TrimSpace(c.Spark.Connect) == "":
		return &FieldError{"spark.connect", "required with engine: spark: the Spark Connect server's address (host:port)"}
	case c.Engine != query.DialectSpark && (c.Spark != SparkConfig{}):
		return &FieldError{"spark", "set only with engine: spark"}
	}
	l := c.Limits
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"query_timeout", l.QueryTimeout}, {"read_timeout", l.ReadTimeout}, {"idle_timeout", l.IdleTimeout}, {"shutdown_timeout", l.ShutdownTimeout}, {"session_ttl", l.SessionTTL}, {"auth_failure_window", l.AuthFailureWindow}} {
		if d.v < 0 {
			return &FieldError{"limits." + d.name, "must not be negative"}
		}
	}
	switch {
	case l.MaxConcurrentQueries < 0 || l.MaxConcurrentQueries > 1024:
		return &FieldError{"limits.max_concurrent_queries", "must be from 1 to 1024 (0: the default, 4)"}
	case l.Threads < 0 || l.Threads > 256:
		return &FieldError{"limits.threads", "must be from 1 to 256 (0: the default, 2)"}
	case l.BudgetAlertShare < 0 || l.BudgetAlertShare > 1:
		return &FieldError{"limits.budget_alert_share", "must be a share from 0 to 1, such as 0.8 (0: the default, 0.8)"}
	case l.MaxRequestBytes < 0:
		return &FieldError{"limits.max_request_bytes", "must not be negative"}
	case l.MemoryLimit != "" && !regexp.MustCompile(`^[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$`).MatchString(l.MemoryLimit):
		return &FieldError{"limits.memory_limit", fmt.Sprintf("%q: want a size such as 2GB or 512MiB", l.MemoryLimit)}
	}
	if c.OIDC != nil {
		if err := c.OIDC.validate(); err != nil {
			return err
		}
	}
	if _, err := c.AccessLog.RetentionDuration(); err != nil {
		return err
	}
	if len(c.Users) == 0 {
		return &FieldError{"users", "at least one user is required (velo token new --user NAME --role ROLE adds one)"}
	}
	names := map[string]bool{}
	hashes := map[string]string{}
	for i, u := range c.Users {
		f := fmt.Sprintf("users[%d]", i)
		if !userNamePattern.MatchString(u.Name) {
			return &FieldError{f + ".name", fmt.Sprintf("%q must match %s", u.Name, userNamePattern)}
		}
		if names[u.Name] {
			return &FieldError{f + ".name", fmt.Sprintf("%q is used twice", u.Name)}
		}
		names[u.Name] = true
		switch u.Role {
		case RoleResearcher, RoleOfficial:
		case RoleDPO, RoleAdmin:
			if len(u.Projects) > 0 {
				return &FieldError{f + ".projects", fmt.Sprintf("a %s has no projects: the dpo reads all of them, the admin none", u.Role)}
			}
		case "":
			return &FieldError{f + ".role", "required: researcher, official, dpo or admin"}
		default:
			return &FieldError{f + ".role", fmt.Sprintf("%q is not one of researcher, official, dpo, admin", u.Role)}
		}
		for j, p := range u.Projects {
			if !projectIDPattern.MatchString(p) {
				return &FieldError{fmt.Sprintf("%s.projects[%d]", f, j), fmt.Sprintf("%q is not a project ID", p)}
			}
		}
		for j, t := range u.Tokens {
			tf := fmt.Sprintf("%s.tokens[%d].sha256", f, j)
			if !sha256Pattern.MatchString(t.SHA256) {
				return &FieldError{tf, "want 64 lower-case hex digits (the SHA-256 of the token; velo token new writes it)"}
			}
			if other, dup := hashes[t.SHA256]; dup {
				return &FieldError{tf, fmt.Sprintf("the same token hash is also given to %s", other)}
			}
			hashes[t.SHA256] = u.Name
		}
	}
	return nil
}

// tokenPrefix marks Velo tokens so that secret scanners and people recognise them.
const tokenPrefix = "velo_"

// NewToken draws a token (32 random bytes) and returns it with its stored hash. The token
// is shown once to the person it is issued to and never stored.
func NewToken(r io.Reader) (token string, stored Token, err error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", Token{}, fmt.Errorf("new token: %w", err)
	}
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, Token{SHA256: HashToken(token)}, nil
}

// HashToken is the stored form of a token: hex SHA-256.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// userTable resolves tokens to users.
type userTable struct {
	users  []User
	hashes [][32]byte // parallel to owners
	owners []int      // index into users
}

func newUserTable(users []User) *userTable {
	t := &userTable{users: slices.Clone(users)}
	for i, u := range t.users {
		for _, tok := range u.Tokens {
			var h [32]byte
			if _, err := hex.Decode(h[:], []byte(tok.SHA256)); err != nil {
				continue // Validate rejects these
			}
			t.hashes = append(t.hashes, h)
			t.owners = append(t.owners, i)
		}
	}
	return t
}

// lookup finds the user a token belongs to. It compares the token's hash with every
// stored hash in constant time and does not stop at a match, so its timing says nothing
// about which hash, if any, matched.
func (t *userTable) lookup(token string) (*User, [32]byte, bool) {
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.hashes {
		if subtle.ConstantTimeCompare(h[:], t.hashes[i][:]) == 1 {
			found = t.owners[i]
		}
	}
	if found < 0 {
		return nil, h, false
	}
	return &t.users[found], h, true
}

// holds reports whether user name still holds the token with this hash (a session made
// from a token ends when the token is revoked).
func (t *userTable) holds(name string, h [32]byte) (*User, bool) {
	for i := range t.hashes {
		if u := &t.users[t.owners[i]]; u.Name == name && subtle.ConstantTimeCompare(h[:], t.hashes[i][:]) == 1 {
			return u, true
		}
	}
	return nil, false
}
