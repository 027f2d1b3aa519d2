package pipeline

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/web"
)

type metricsServer struct {
	srv *http.Server
	ln  net.Listener
}

// startMetrics serves /metrics, the status page (/) and its API (/api/) on addr, behind the
// token and over TLS when portcullis.conf says so. The stage counters live in the stages as
// atomics; each scrape builds a fresh set from the current engine, so a reload never leaves stale
// series behind.
func startMetrics(addr string, d *Daemon, dm config.Daemon) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for metrics on %s: %w", addr, err)
	}
	if dm.MetricsTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(dm.MetricsTLSCert, dm.MetricsTLSKey)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("metrics_tls_cert: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	if host, _, _ := net.SplitHostPort(addr); dm.MetricsToken == "" && !isLoopback(host) {
		d.log.Warn("the metrics listener and status page are open beyond loopback without metrics_token", "listen", addr)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", web.Guard(web.Options{Token: dm.MetricsToken}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		d.writeMetrics(w)
	})))
	web.Register(mux, d, web.Options{Token: dm.MetricsToken})
	s := &metricsServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}, ln: ln}
	go s.srv.Serve(ln)
	return s, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func (s *metricsServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

type writer interface{ Write([]byte) (int, error) }

func (d *Daemon) writeMetrics(w writer) {
	eng := d.current()
	set := metrics.NewSet()
	counter := func(name string, v uint64) { set.NewCounter(name).Set(v) }
	gauge := func(name string, v float64) { set.NewGauge(name, func() float64 { return v }) }
	for _, s := range eng.sources {
		st := s.src.Stats
		counter(fmt.Sprintf("portcullis_lines_read_total{source=%q}", s.pattern), st.Lines.Load())
		counter(fmt.Sprintf("portcullis_bytes_read_total{source=%q}", s.pattern), st.Bytes.Load())
		counter(fmt.Sprintf("portcullis_lines_skipped_total{source=%q,reason=\"overlong\"}", s.pattern), st.Overlong.Load())
		counter(fmt.Sprintf("portcullis_lines_skipped_total{source=%q,reason=\"binary\"}", s.pattern), st.Binary.Load())
		counter(fmt.Sprintf("portcullis_lines_skipped_total{source=%q,reason=\"malformed\"}", s.pattern), st.Malformed.Load())
		counter(fmt.Sprintf("portcullis_rotations_total{source=%q}", s.pattern), st.Rotated.Load())
	}
	active := make([]int, len(eng.jails))
	for _, a := range eng.bans.Active(0, true) {
		active[a.Jail]++
	}
	for id, j := range eng.jails {
		ms := &eng.m.Stats[id]
		bs := &eng.bans.Stats[id]
		counter(fmt.Sprintf("portcullis_lines_matched_total{jail=%q}", j.Name), ms.Matched.Load()+ms.Ignored.Load())
		counter(fmt.Sprintf("portcullis_lines_ignored_total{jail=%q}", j.Name), ms.Ignored.Load())
		counter(fmt.Sprintf("portcullis_lines_nodate_total{jail=%q}", j.Name), ms.NoDate.Load())
		counter(fmt.Sprintf("portcullis_failures_stale_total{jail=%q}", j.Name), ms.Stale.Load())
		counter(fmt.Sprintf("portcullis_failures_total{jail=%q}", j.Name), ms.Matched.Load())
		counter(fmt.Sprintf("portcullis_bans_total{jail=%q}", j.Name), bs.Bans.Load())
		counter(fmt.Sprintf("portcullis_bans_refused_total{jail=%q}", j.Name), bs.Ignored.Load())
		counter(fmt.Sprintf("portcullis_ignorecommand_errors_total{jail=%q}", j.Name), bs.IgnoreCommandErrors.Load())
		gauge(fmt.Sprintf("portcullis_banned{jail=%q}", j.Name), float64(active[id]))
	}
	if sl := eng.syslog; sl != nil {
		counter("portcullis_syslog_messages_total", sl.Stats.Messages.Load())
		counter("portcullis_syslog_unrouted_total", sl.Stats.Unrouted.Load())
		counter("portcullis_syslog_denied_total", sl.Stats.Denied.Load())
		counter("portcullis_syslog_oversized_total", sl.Stats.Oversized.Load())
		counter("portcullis_syslog_dropped_lines_total", sl.Stats.Dropped.Load())
		gauge("portcullis_syslog_connections", float64(sl.Stats.Conns.Load()))
		counter("portcullis_syslog_refused_connections_total", sl.Stats.Refused.Load())
		counter("portcullis_syslog_idle_closed_total", sl.Stats.Idle.Load())
		counter("portcullis_syslog_framing_errors_total", sl.Stats.Framing.Load())
	}
	gauge("portcullis_window_keys", float64(eng.win.Tracked.Load()))
	counter("portcullis_window_refused_total", eng.win.Refused.Load())
	counter("portcullis_window_evicted_total", eng.win.Evicted.Load())
	counter("portcullis_scan_errors_total", eng.errors.Load())
	counter("portcullis_regex_limit_total", eng.m.RegexLimit.Load())
	counter("portcullis_lines_processed_total", eng.lines.Load())
	gauge("portcullis_uptime_seconds", d.opts.Now().Sub(d.started).Seconds())
	d.writeFleetMetrics(set)
	set.WritePrometheus(w)
	d.lasting.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}
