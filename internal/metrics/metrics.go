// Package metrics exposes a run as Prometheus metrics: served during the
// run on --metrics-listen, and written to a node_exporter textfile at the
// end so cron runs are visible too. Labels carry partner names and
// outcomes only, never record keys or card data.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
)

// Metrics implements load.Observer and feeds httpx hooks.
type Metrics struct {
	Registry  *prometheus.Registry
	records   *prometheus.CounterVec
	planned   *prometheus.CounterVec
	unchanged *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	requests  *prometheus.CounterVec
	retries   *prometheus.CounterVec
	breaker   *prometheus.GaugeVec
	duration  prometheus.Gauge
	lastOK    prometheus.Gauge
	exitCode  prometheus.Gauge
}

func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry:  r,
		records:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etl_records_total", Help: "Operations finished, by partner and outcome."}, []string{"partner", "outcome"}),
		planned:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etl_planned_total", Help: "Operations planned, by partner and kind (create, update, deactivate)."}, []string{"partner", "kind"}),
		unchanged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etl_unchanged_total", Help: "Records skipped because the partner already has this content."}, []string{"partner"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "etl_request_duration_seconds", Help: "Partner HTTP attempt latency.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"partner"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etl_http_requests_total", Help: "Partner HTTP attempts by status code (0 = no response)."}, []string{"partner", "code"}),
		retries:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etl_retries_total", Help: "Partner HTTP attempts that were retries."}, []string{"partner"}),
		breaker:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "etl_breaker_state", Help: "Circuit breaker: 0 closed, 1 open, 2 half-open."}, []string{"partner"}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etl_run_duration_seconds", Help: "Duration of the last run."}),
		lastOK:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "etl_last_success_timestamp_seconds", Help: "Unix time of the last run that delivered every record."}),
		exitCode: prometheus.NewGauge(prometheus.GaugeOpts{Name: "etl_run_exit_code", Help: "Exit code of the last run."}),
	}
	r.MustRegister(m.records, m.planned, m.unchanged, m.latency, m.requests, m.retries, m.breaker, m.duration, m.lastOK, m.exitCode)
	return m
}

func (m *Metrics) Planned(p string, k partner.Kind) { m.planned.WithLabelValues(p, string(k)).Inc() }
func (m *Metrics) Unchanged(p string)               { m.unchanged.WithLabelValues(p).Inc() }
func (m *Metrics) Finished(p string, r partner.Result, _ time.Duration) {
	m.records.WithLabelValues(p, string(r.Outcome)).Inc()
}

// Tune hooks a partner's HTTP client into the metrics.
func (m *Metrics) Tune(partner string, h *httpx.Config) {
	m.breaker.WithLabelValues(partner).Set(0)
	prev := h.Observe
	h.Observe = func(op string, status int, d time.Duration, retry bool) {
		m.latency.WithLabelValues(partner).Observe(d.Seconds())
		m.requests.WithLabelValues(partner, strconv.Itoa(status)).Inc()
		if retry {
			m.retries.WithLabelValues(partner).Inc()
		}
		if prev != nil {
			prev(op, status, d, retry)
		}
	}
	h.BreakerChange = func(_ string, s httpx.BreakerState) { m.breaker.WithLabelValues(partner).Set(float64(s)) }
}

// Done records the run's end.
func (m *Metrics) Done(d time.Duration, exitCode int) {
	m.duration.Set(d.Seconds())
	m.exitCode.Set(float64(exitCode))
	if exitCode == 0 {
		m.lastOK.Set(float64(time.Now().Unix()))
	}
}

// Serve exposes /metrics on addr until ctx ends; it returns the address
// actually bound (addr may use port 0).
func (m *Metrics) Serve(ctx context.Context, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err
		}
	}()
	return ln.Addr().String(), nil
}

// WriteTextfile writes the metrics for node_exporter's textfile collector
// (atomically: temp file, then rename).
func (m *Metrics) WriteTextfile(path string) error {
	return prometheus.WriteToTextfile(path, m.Registry)
}
