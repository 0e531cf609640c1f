package main

import (
	"io"

	"github.com/schollz/progressbar/v3"
)

// progress returns a callback that draws a progress bar of people done (synth) on a
// terminal and does nothing otherwise (CI logs and pipes get the final summary only).
// done is the finisher.
func (m *Main) progress(desc string, total int64) (update func(n int64), done func()) {
	return m.progressBar(desc, total, progressbar.OptionShowIts(), progressbar.OptionSetItsString("people"))
}

// progressBytes is progress for work counted in bytes (ingest): sizes and a byte rate.
func (m *Main) progressBytes(desc string, total int64) (update func(n int64), done func()) {
	return m.progressBar(desc, total, progressbar.OptionShowBytes(true))
}

func (m *Main) progressBar(desc string, total int64, unit ...progressbar.Option) (update func(n int64), done func()) {
	if !m.Interactive {
		return func(int64) {}, func() {}
	}
	bar := progressbar.NewOptions64(total, append([]progressbar.Option{
		progressbar.OptionSetWriter(m.Stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
	}, unit...)...)
	return func(n int64) { _ = bar.Set64(n) }, func() { _ = bar.Finish(); io.WriteString(m.Stderr, "") }
}
