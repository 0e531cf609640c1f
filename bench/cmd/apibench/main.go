// Command apibench load-tests Velo's HTTP API on loopback and prints latency percentiles:
// a synthetic extract is generated and ingested, a server started on 127.0.0.1, then N
// requests for one cached release and M distinct fresh queries sent at once.
//
// The fresh queries then run one after another in plain DuckDB on the same Parquet (the
// floor for the fresh phase's throughput), unless --plain=false.
//
//	go run ./bench/cmd/apibench [--persons 20000 | --data DIR] [--cached 1000] [--clients 16] [--fresh 100] [--slots 8] [--rate R] [--plain]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/velo-fse/velo/bench"
	notebooksapi "github.com/velo-fse/velo/notebooks-api"
)

func main() {
	persons := flag.Int("persons", 20000, "people in the synthetic extract")
	data := flag.String("data", "", "serve this dataset (written by velo ingest, read only) instead of generating one of --persons")
	cached := flag.Int("cached", 1000, "requests for one cached release")
	clients := flag.Int("clients", 16, "clients sending the cached requests")
	fresh := flag.Int("fresh", 100, "distinct fresh queries, sent at once")
	slots := flag.Int("slots", 8, "the server's max_concurrent_queries")
	queue := flag.Duration("queue-timeout", 2*time.Second, "the server's queue_timeout (negative: refuse at once)")
	threads := flag.Int("threads", 2, "DuckDB threads")
	rate := flag.Float64("rate", 0, "pace the cached requests at this many per second in all (open loop; 0: closed loop)")
	plain := flag.Bool("plain", true, "also run the fresh queries one after another in plain DuckDB")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the load phases (server and clients: one process) to `FILE`")
	flag.Parse()
	cfg := bench.LoadConfig{Cached: *cached, CachedConcurrency: *clients, CachedRate: *rate, Fresh: *fresh, FreshEpsilon: 0.01}
	if *plain {
		cfg.PlainThreads = *threads
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if *cpuprofile != "" {
		stopProfile, err := startProfile(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "apibench:", err)
			os.Exit(1)
		}
		defer stopProfile()
	}
	if err := run(ctx, *persons, *data, cfg, notebooksapi.Limits{MaxConcurrentQueries: *slots, QueueTimeout: *queue, Threads: *threads}); err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
}

// startProfile starts a CPU profile into path; the function it returns stops and closes it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func run(ctx context.Context, persons int, data string, cfg bench.LoadConfig, limits notebooksapi.Limits) error {
	dir, err := os.MkdirTemp("", "velo-apibench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	var srv *bench.APIServer
	over := fmt.Sprintf("%d synthetic people", persons)
	if data != "" {
		over = data
		srv, err = bench.ServeAPI(ctx, dir, data, limits)
	} else {
		srv, err = bench.StartAPIServer(ctx, dir, persons, limits)
	}
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Printf("server on %s over %s (set up in %s); %d CPUs, GOMAXPROCS %d; %d query slots, queue timeout %s, DuckDB threads %d\n",
		srv.URL, over, time.Since(start).Round(time.Millisecond), runtime.NumCPU(), runtime.GOMAXPROCS(0), limits.MaxConcurrentQueries, limits.QueueTimeout, limits.Threads)
	rep, err := bench.RunLoad(ctx, srv, cfg)
	if err != nil {
		return err
	}
	fmt.Println(rep.Cached)
	fmt.Println(rep.Fresh)
	if rep.Plain.Requests > 0 {
		fmt.Println(rep.Plain)
		if ok := rep.Fresh.Status[200]; ok > 0 {
			velo := float64(ok) / rep.Fresh.Wall.Seconds()
			fmt.Printf("fresh throughput: Velo %.1f answered/s, plain DuckDB %.1f queries/s: Velo / DuckDB %.2f\n", velo, rep.Plain.Throughput(), velo/rep.Plain.Throughput())
			if rep.Fresh.CPU > 0 && rep.Plain.CPU > 0 {
				fmt.Printf("process CPU per query: Velo %.2f ms, plain DuckDB %.2f ms: DuckDB / Velo %.2f\n",
					float64(rep.Fresh.CPU.Microseconds())/1000/float64(ok), float64(rep.Plain.CPUPerRequest().Microseconds())/1000,
					float64(rep.Plain.CPUPerRequest())/(float64(rep.Fresh.CPU)/float64(ok)))
			}
		}
	}
	fmt.Printf("budget: epsilon %s spent, %s expected; %d charges; ledger verified: %v\n", rep.SpentGot, rep.SpentWant, rep.Charged, rep.Verified)
	for _, p := range []bench.Phase{rep.Cached, rep.Fresh} {
		if len(p.Unexpected) > 0 {
			return fmt.Errorf("%s: %d unexpected answers, e.g. %s", p.Name, len(p.Unexpected), p.Unexpected[0])
		}
	}
	if rep.SpentGot != rep.SpentWant || !rep.Verified {
		return fmt.Errorf("budget not exact")
	}
	return nil
}
