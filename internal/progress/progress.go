// Package progress shows a run's progress: live bars per partner on a
// terminal (vbauerster/mpb), periodic JSON progress lines otherwise (cron
// logs). It implements load.Observer.
package progress

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"go.uber.org/zap"

	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/partner"
)

type counter struct {
	planned, done, failed, unchanged atomic.Int64
	bar                              *mpb.Bar
}

// Progress tracks per-partner counts.
type Progress struct {
	mu       sync.Mutex
	parts    map[string]*counter
	p        *mpb.Progress
	log      *zap.Logger
	every    time.Duration
	start    time.Time
	stop     chan struct{}
	stopped  sync.Once
	wg       sync.WaitGroup
	partners []string
}

// NewBars draws bars on w (a terminal).
func NewBars(ctx context.Context, w io.Writer, partners []string) *Progress {
	pr := newProgress(partners)
	pr.p = mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
	for _, n := range partners {
		c := pr.parts[n]
		c.bar = pr.p.AddBar(0,
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-13s", n)), decor.CountersNoUnit("%d/%d", decor.WCSyncWidth)),
			mpb.AppendDecorators(decor.AverageSpeed(0, " %.0f/s", decor.WCSyncWidth), decor.Name(" eta "), decor.AverageETA(decor.ET_STYLE_GO),
				decor.Any(func(decor.Statistics) string { return fmt.Sprintf(" failed %d", c.failed.Load()) })),
		)
	}
	return pr
}

// NewLines logs a JSON progress line per partner every interval.
func NewLines(log *zap.Logger, partners []string, every time.Duration) *Progress {
	pr := newProgress(partners)
	pr.log, pr.every = log, every
	pr.wg.Add(1)
	go pr.tick()
	return pr
}

// Quiet tracks counts without output.
func Quiet(partners []string) *Progress { return newProgress(partners) }

func newProgress(partners []string) *Progress {
	pr := &Progress{parts: map[string]*counter{}, start: time.Now(), stop: make(chan struct{}), partners: append([]string(nil), partners...)}
	sort.Strings(pr.partners)
	for _, n := range partners {
		pr.parts[n] = &counter{}
	}
	return pr
}

func (pr *Progress) get(p string) *counter {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	c := pr.parts[p]
	if c == nil {
		c = &counter{}
		pr.parts[p] = c
	}
	return c
}

func (pr *Progress) Planned(p string, _ partner.Kind) {
	c := pr.get(p)
	n := c.planned.Add(1)
	if c.bar != nil {
		c.bar.SetTotal(n, false)
	}
}

func (pr *Progress) Unchanged(p string) { pr.get(p).unchanged.Add(1) }

func (pr *Progress) Finished(p string, r partner.Result, _ time.Duration) {
	c := pr.get(p)
	c.done.Add(1)
	if r.Outcome != partner.OK {
		c.failed.Add(1)
	}
	if c.bar != nil {
		c.bar.Increment()
	}
}

// Snapshot returns done/planned/failed/unchanged per partner.
func (pr *Progress) Snapshot() map[string][4]int64 {
	out := map[string][4]int64{}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for n, c := range pr.parts {
		out[n] = [4]int64{c.done.Load(), c.planned.Load(), c.failed.Load(), c.unchanged.Load()}
	}
	return out
}

func (pr *Progress) tick() {
	defer pr.wg.Done()
	t := time.NewTicker(pr.every)
	defer t.Stop()
	for {
		select {
		case <-pr.stop:
			return
		case <-t.C:
			pr.logLines()
		}
	}
}

func (pr *Progress) logLines() {
	el := time.Since(pr.start).Seconds()
	for n, s := range pr.Snapshot() {
		rate := float64(s[0]) / max(el, 0.001)
		eta := 0.0
		if rate > 0 && s[1] > s[0] {
			eta = float64(s[1]-s[0]) / rate
		}
		pr.log.Info("progress", zap.String("partner", n), zap.Int64("done", s[0]), zap.Int64("planned", s[1]),
			zap.Int64("failed", s[2]), zap.Int64("unchanged", s[3]), zap.Float64("rate_per_s", rate), zap.Float64("eta_s", eta))
	}
}

// Close completes the bars or stops the ticker.
func (pr *Progress) Close() {
	pr.stopped.Do(func() {
		close(pr.stop)
		pr.wg.Wait()
		if pr.p != nil {
			for _, c := range pr.parts {
				if c.bar != nil {
					c.bar.SetTotal(c.planned.Load(), true)
				}
			}
			pr.p.Wait()
		}
		if pr.log != nil {
			pr.logLines()
		}
	})
}

// Multi fans one observer call out to several.
type Multi []load.Observer

func (m Multi) Planned(p string, k partner.Kind) {
	for _, o := range m {
		o.Planned(p, k)
	}
}
func (m Multi) Unchanged(p string) {
	for _, o := range m {
		o.Unchanged(p)
	}
}
func (m Multi) Finished(p string, r partner.Result, d time.Duration) {
	for _, o := range m {
		o.Finished(p, r, d)
	}
}
