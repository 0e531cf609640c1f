package ledger

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// MinAccessRetention is the shortest retention the access log takes without an explicit
// override: a year (docs/identity.md).
const MinAccessRetention = 365 * 24 * time.Hour

// DefaultAccessRetention keeps records 400 days: a year, plus a margin for an audit of the
// past year that starts late or runs long.
const DefaultAccessRetention = 400 * 24 * time.Hour

// AccessWriterOptions configure an AccessWriter.
type AccessWriterOptions struct {
	// Retention: records older than this are pruned at start and then daily; default
	// DefaultAccessRetention; negative: never pruned.
	Retention time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// AccessWriter records requests in an AccessStore off the request's path: Record queues
// a record (waiting only when 4096 are queued), a goroutine writes them in batches, each
// batch durable before the next.
type AccessWriter struct {
	store AccessStore
	opts  AccessWriterOptions
	ch    chan AccessRecord
	sync  chan chan struct{}
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// NewAccessWriter starts a writer on store.
func NewAccessWriter(store AccessStore, o AccessWriterOptions) *AccessWriter {
	if o.Retention == 0 {
		o.Retention = DefaultAccessRetention
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	w := &AccessWriter{store: store, opts: o, ch: make(chan AccessRecord, 4096), sync: make(chan chan struct{}),
		quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Store is the writer's store (for exports).
func (w *AccessWriter) Store() AccessStore { return w.store }

// Record queues a record.
func (w *AccessWriter) Record(r AccessRecord) {
	select {
	case w.ch <- r:
	case <-w.done:
	}
}

// Sync returns once every record queued before it is written.
func (w *AccessWriter) Sync() {
	reply := make(chan struct{})
	select {
	case w.sync <- reply:
		<-reply
	case <-w.done:
	}
}

// Close writes what is queued and stops the writer.
func (w *AccessWriter) Close() error {
	w.once.Do(func() { close(w.quit) })
	<-w.done
	return nil
}

// Prune removes the records older than the retention now.
func (w *AccessWriter) Prune(ctx context.Context) {
	if w.opts.Retention < 0 {
		return
	}
	before := w.opts.Now().Add(-w.opts.Retention)
	n, err := w.store.Prune(ctx, before)
	if err != nil {
		w.opts.Logger.Error("access log: pruning failed", "err", err)
		return
	}
	if n > 0 {
		w.opts.Logger.Info("access log: pruned records past the retention", "removed", n, "before", before.UTC().Format(time.RFC3339))
	}
}

func (w *AccessWriter) run() {
	defer close(w.done)
	w.Prune(context.Background())
	tick := time.NewTicker(24 * time.Hour)
	defer tick.Stop()
	var batch []AccessRecord
	drain := func() {
		for {
			select {
			case r := <-w.ch:
				batch = append(batch, r)
				if len(batch) < 1024 {
					continue
				}
				w.write(batch)
				batch = batch[:0]
				continue
			default:
			}
			break
		}
		w.write(batch)
		batch = batch[:0]
	}
	for {
		select {
		case r := <-w.ch:
			batch = append(batch, r)
			drain()
		case reply := <-w.sync:
			drain()
			close(reply)
		case <-tick.C:
			w.Prune(context.Background())
		case <-w.quit:
			drain()
			return
		}
	}
}

func (w *AccessWriter) write(batch []AccessRecord) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.store.Append(ctx, batch); err != nil {
		// The request log (stderr) still has every request.
		w.opts.Logger.Error("access log: records could not be written", "records", len(batch), "err", err)
	}
}
