// Package pgtest starts a private PostgreSQL server for a test: initdb into a new
// temporary folder, pg_ctl start on a free loopback port with its unix socket in that
// folder, password authentication (scram-sha-256), stopped and removed when the test ends.
//
// The server's programs come from Debian's postgresql package: the folder holding initdb
// and pg_ctl is the VELO_PG_BIN setting, else the newest /usr/lib/postgresql/*/bin. Without
// them a test stops through testenv.Missing: a loud skip on a developer's machine, a failure
// under CI=true (.ci/run installs postgresql).
//
// initdb refuses to run as root; as root, the server runs as the postgres user (which
// Debian's package creates) through runuser, and its folder belongs to that user.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/velo-fse/velo/internal/testenv"
)

// BinEnv names the folder holding initdb and pg_ctl.
const BinEnv = "VELO_PG_BIN"

// User is the server's superuser; its password is Server.Password.
const User = "velo"

// Server is a running private PostgreSQL server.
type Server struct {
	Dir      string // the temporary folder: data, socket, log
	Port     int
	Password string
	bin      string
	runAs    string // the user running the server when the test runs as root; else ""
}

// Bin returns the folder holding initdb and pg_ctl, or an error saying where it looked and
// how to install them.
func Bin() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv(BinEnv); dir != "" {
		if !has(dir) {
			return "", fmt.Errorf("%s=%s holds no initdb, pg_ctl and postgres", BinEnv, dir)
		}
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server programs: install Debian's postgresql package (apt-get install postgresql), or set %s to the folder holding initdb and pg_ctl", BinEnv)
}

// version is N of /usr/lib/postgresql/N/bin.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// Start starts a server for t, stopped and removed when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Bin()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	s := &Server{bin: bin, Password: "pw-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	if os.Geteuid() == 0 {
		s.runAs = "postgres"
		if _, err := user.Lookup(s.runAs); err != nil {
			t.Fatalf("pgtest: running as root, and initdb refuses root, but there is no postgres user to run the server as (Debian's postgresql package creates it): %v", err)
		}
	}
	if s.Dir, err = os.MkdirTemp("", "velo-pg-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	pwfile := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s.runAs != "" {
		u, _ := user.Lookup(s.runAs)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{s.Dir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.runAs != "" {
		if out, err := exec.Command("runuser", "-u", s.runAs, "--", "test", "-w", s.Dir).CombinedOutput(); err != nil {
			t.Fatalf("pgtest: the %s user cannot write %s (is a folder above it closed to others? set TMPDIR to one it can reach): %v %s", s.runAs, s.Dir, err, out)
		}
	}
	if out, err := s.run("initdb", "-D", s.data(), "-U", User, "--auth=scram-sha-256", "--pwfile="+pwfile,
		"-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	var lastErr error
	for range 5 { // a free port may be taken between asking and listening
		s.Port = freePort(t)
		if lastErr = s.pgStart(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("pgtest: %v", lastErr)
	return nil
}

func (s *Server) pgStart() error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=200", s.Port, s.Dir)
	out, err := s.run("pg_ctl", "-D", s.data(), "-l", filepath.Join(s.Dir, "log"), "-w", "-t", "60", "-o", opts, "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Kill stops the server at once, as a crash would (pg_ctl stop -m immediate).
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if out, err := s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
}

// Restart starts a killed server again on its port; it recovers from its write-ahead log.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.pgStart(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

// run runs one of the server's programs, as the postgres user when the test runs as root.
func (s *Server) run(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, prog)
	if s.runAs != "" {
		return exec.Command("runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (s *Server) stop(t testing.TB) {
	if _, err := os.Stat(filepath.Join(s.data(), "postmaster.pid")); err == nil {
		if out, err := s.run("pg_ctl", "-D", s.data(), "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
			t.Errorf("pgtest: pg_ctl stop: %v\n%s", err, out)
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		t.Errorf("pgtest: %v", err)
	}
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// DSN is the URL of database db, the password included.
func (s *Server) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(User, s.Password), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), Path: "/" + db}
	return u.String()
}

// NewDatabase creates a new database and returns its URL.
func (s *Server) NewDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return s.DSN(name)
}

// Exec runs SQL statements in database db (tests tamper with a ledger this way).
func (s *Server) Exec(t testing.TB, db, sql string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer c.Close(ctx)
	tag, err := c.Exec(ctx, sql, args...)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", strings.TrimSpace(sql), err)
	}
	return tag.RowsAffected()
}
