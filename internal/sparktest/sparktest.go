// Package sparktest starts a private Spark cluster for a test or a benchmark: a standalone
// master, workers and a Spark Connect server, each a separate process on loopback with its
// own free ports, logs and work folders in a temporary folder, stopped and removed when
// the test ends. Readiness is read from the processes' logs (the master's leadership, each
// worker's registration, the Connect server's start and its executors' registration),
// never guessed with a sleep.
//
// Spark comes from PyPI's pyspark 4.3.0, installed by bench/spark/setup.sh into a virtual
// environment in the cache (~/.cache/velo/spark). The folder holding bin/spark-class is the
// VELO_SPARK_HOME setting, else that environment's pyspark folder; Java 17 or later is
// JAVA_HOME, else the newest /usr/lib/jvm/java-*-openjdk-*. Without them a test stops
// through testenv.Missing: a loud skip on a developer's machine, a failure under CI=true
// (.ci/run installs them).
package sparktest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/velo-fse/velo/internal/testenv"
)

// HomeEnv names the folder holding bin/spark-class (a pyspark install's pyspark folder).
const HomeEnv = "VELO_SPARK_HOME"

// ConnectEnv, when set, is a running cluster's Spark Connect address (sc://host:port) that
// Start returns instead of starting one: for iterating on a test without waiting for a
// cluster each time. Its number of workers is then the cluster's, not the one asked.
const ConnectEnv = "VELO_SPARK_CONNECT"

// ReadyTimeout bounds the wait for the cluster's readiness (its logs say when it is
// ready; on a loaded two-core machine that takes one to two minutes).
const ReadyTimeout = 5 * time.Minute

// Cluster is a running private Spark cluster.
type Cluster struct {
	Dir     string // the temporary folder: logs and work folders
	Remote  string // the Spark Connect address, sc://127.0.0.1:port
	Workers int
	procs   []*proc
}

// proc is one process of the cluster; done closes when it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Home returns the folder holding bin/spark-class, or an error saying where it looked
// and how to install it.
func Home() (string, error) {
	return testenv.InstallDir(HomeEnv, filepath.Join("bin", "spark-class"),
		"no Spark: run bench/spark/setup.sh (pyspark 4.3.0 into ~/.cache/velo/spark)",
		filepath.Join(testenv.CacheDir(), "velo", "spark", "lib", "python3*", "site-packages", "pyspark"))
}

// JavaHome returns a Java 17+ installation: JAVA_HOME, else the newest
// /usr/lib/jvm/java-N-openjdk-* with N ≥ 17.
func JavaHome() (string, error) {
	if j := os.Getenv("JAVA_HOME"); j != "" {
		return j, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/jvm/java-*-openjdk-*")
	re := regexp.MustCompile(`java-(\d+)-openjdk`)
	best, bestN := "", 0
	for _, d := range dirs {
		m := re.FindStringSubmatch(filepath.Base(d))
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if _, err := os.Stat(filepath.Join(d, "bin", "java")); err == nil && n >= 17 && n > bestN {
			best, bestN = d, n
		}
	}
	if best == "" {
		return "", errors.New("no Java 17 or later: install Debian's openjdk-17-jre-headless, or set JAVA_HOME")
	}
	return best, nil
}

// Start starts a master, that many workers (one core, 2 GiB each) and a Spark Connect
// server for t, and waits until the server has one executor on every worker. They are
// stopped when t ends.
func Start(t testing.TB, workers int) *Cluster {
	t.Helper()
	if r := os.Getenv(ConnectEnv); r != "" {
		t.Logf("sparktest: using the running cluster at %s (%s)", r, ConnectEnv)
		return &Cluster{Remote: r, Workers: workers}
	}
	if _, err := Home(); err != nil {
		testenv.Missing(t, "%v", err)
	}
	if _, err := JavaHome(); err != nil {
		testenv.Missing(t, "%v", err)
	}
	c, err := Launch(workers)
	if c != nil {
		t.Cleanup(func() {
			c.Stop()
			if !t.Failed() {
				os.RemoveAll(c.Dir)
			} else {
				t.Logf("sparktest: logs kept in %s", c.Dir)
			}
		})
	}
	if err != nil {
		t.Fatalf("sparktest: %v", err)
	}
	return c
}

// Launch is Start outside a test (benchmarks): on success the caller stops the cluster
// and removes its Dir; on failure the processes are stopped and the Cluster returned,
// if any, names the folder holding their logs.
func Launch(workers int) (*Cluster, error) {
	home, err := Home()
	if err != nil {
		return nil, err
	}
	java, err := JavaHome()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "velo-spark-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Workers: workers}
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	if err := c.start(ctx, home, java); err != nil {
		c.Stop()
		return c, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, home, java string) error {
	env := append(os.Environ(), "JAVA_HOME="+java, "SPARK_HOME="+home, "SPARK_LOG_DIR="+c.Dir,
		"SPARK_LOCAL_IP=127.0.0.1", "SPARK_NO_DAEMONIZE=1", "PYSPARK_PYTHON=/bin/false",
		// The master and workers only schedule: a small heap each (1 GiB by default).
		"SPARK_DAEMON_MEMORY=512m")
	class := filepath.Join(home, "bin", "spark-class")
	mport, mui := freePort(), freePort()
	master := fmt.Sprintf("spark://127.0.0.1:%d", mport)
	mlog, err := c.launch(env, "master", class, "org.apache.spark.deploy.master.Master",
		"--host", "127.0.0.1", "--port", strconv.Itoa(mport), "--webui-port", strconv.Itoa(mui))
	if err != nil {
		return err
	}
	if err := waitLog(ctx, mlog, "I have been elected leader", 1, c.procs[0]); err != nil {
		return fmt.Errorf("master: %w", err)
	}
	var wlogs []string
	for i := range c.Workers {
		work := filepath.Join(c.Dir, fmt.Sprintf("worker%d", i+1))
		if err := os.MkdirAll(work, 0o755); err != nil {
			return err
		}
		l, err := c.launch(env, fmt.Sprintf("worker%d", i+1), class, "org.apache.spark.deploy.worker.Worker", master,
			"--host", "127.0.0.1", "--cores", "1", "--memory", "2g", "--webui-port", strconv.Itoa(freePort()), "--work-dir", work)
		if err != nil {
			return err
		}
		wlogs = append(wlogs, l)
	}
	for i, l := range wlogs {
		if err := waitLog(ctx, l, "Successfully registered with master", 1, c.procs[1+i]); err != nil {
			return fmt.Errorf("worker %d: %w", i+1, err)
		}
	}
	port := freePort()
	clog, err := c.launch(env, "connect", filepath.Join(home, "bin", "spark-submit"),
		"--class", "org.apache.spark.sql.connect.service.SparkConnectServer", "--name", "velo-connect",
		"--master", master,
		"--conf", "spark.connect.grpc.binding.port="+strconv.Itoa(port),
		"--conf", "spark.connect.grpc.binding.address=127.0.0.1",
		"--conf", "spark.driver.host=127.0.0.1",
		"--conf", "spark.driver.memory=1g",
		"--conf", "spark.executor.memory=1g",
		"--conf", "spark.ui.enabled=false",
		// Few rows per query: a few shuffle partitions, not 200 tasks per stage.
		"--conf", "spark.sql.shuffle.partitions="+strconv.Itoa(2*c.Workers),
		"spark-internal")
	if err != nil {
		return err
	}
	connect := c.procs[len(c.procs)-1]
	if err := waitLog(ctx, clog, "Spark Connect server started at", 1, connect); err != nil {
		return fmt.Errorf("Spark Connect server: %w", err)
	}
	if err := waitLog(ctx, clog, "Registered executor", c.Workers, connect); err != nil {
		return fmt.Errorf("Spark Connect server's executors: %w", err)
	}
	c.Remote = fmt.Sprintf("sc://127.0.0.1:%d", port)
	return nil
}

// launch starts one process in its own process group, its output in DIR/name.log.
func (c *Cluster) launch(env []string, name, prog string, args ...string) (string, error) {
	logPath := filepath.Join(c.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	cmd := exec.Command(prog, args...)
	cmd.Env = env
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, for Stop; killed with this process should it die without
	// stopping the cluster (a test binary's timeout panics past every Cleanup).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	return logPath, nil
}

// Stop stops the processes, the Connect server first, and waits for them.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, p := range slices.Backward(c.procs) {
		// The process group: spark-class's java and anything it started.
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
			}
		}()
	}
	wg.Wait()
	c.procs = nil
}

// waitLog waits until the log holds n lines containing marker, or the process exits, or
// ctx ends. It follows the file as it grows (a poll of its new bytes every 100 ms).
func waitLog(ctx context.Context, path, marker string, n int, p *proc) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	found := 0
	var partial string
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for {
			line, err := r.ReadString('\n')
			partial += line
			if err != nil {
				break // at the end for now: keep the partial line
			}
			if strings.Contains(partial, marker) {
				found++
			}
			partial = ""
		}
		if found >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %q seen %d of %d times in %s\n%s", ReadyTimeout, marker, found, n, path, tail(path))
		case <-p.done:
			return fmt.Errorf("exited before %q appeared in %s\n%s", marker, path, tail(path))
		case <-tick.C:
		}
	}
}

// tail is the end of a log, for an error.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
