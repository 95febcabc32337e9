package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// sandboxProc is `etl sandbox` in its own process, so that its CPU is not
// mixed with the driver's (the bare client and the naive loop run in this
// process) and a measurement starts against empty partner state.
type sandboxProc struct {
	cmd    *exec.Cmd
	URL    string // http://127.0.0.1:PORT, partner p under URL+"/"+p
	stderr bytes.Buffer
	done   chan struct{}
	client *http.Client
}

// startSandbox starts bin sandbox on a free loopback port and waits until
// it answers.
func startSandbox(ctx context.Context, bin, probePartner string, extra ...string) (*sandboxProc, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &sandboxProc{URL: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{}),
			client: &http.Client{Timeout: 10 * time.Second}}
		s.cmd = exec.Command(bin, append([]string{"sandbox", "--listen", "127.0.0.1:" + strconv.Itoa(port)}, extra...)...)
		s.cmd.Stderr = &s.stderr
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("bench: start sandbox: %w", err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		if lastErr = s.waitReady(ctx, probePartner); lastErr == nil {
			return s, nil
		}
		s.Stop()
	}
	return nil, fmt.Errorf("bench: sandbox did not come up: %w", lastErr)
}

func (s *sandboxProc) waitReady(ctx context.Context, p string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("sandbox exited: %s", strings.TrimSpace(s.stderr.String()))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := s.Faults(ctx, p); err == nil {
			return nil
		}
	}
	return errors.New("no answer within 15s")
}

// PID is the sandbox process id (for its CPU time).
func (s *sandboxProc) PID() int { return s.cmd.Process.Pid }

// Stop ends the sandbox and waits for it.
func (s *sandboxProc) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// faultsView is what the faults control endpoint answers.
type faultsView struct {
	Config faults.Config `json:"config"`
	Stats  faults.Stats  `json:"stats"`
}

// Faults reads partner p's fault config and counters.
func (s *sandboxProc) Faults(ctx context.Context, p string) (faultsView, error) {
	return s.faultsCall(ctx, http.MethodGet, p, "")
}

// SetFaults replaces partner p's faults with spec ("latency=50ms,rate=200").
func (s *sandboxProc) SetFaults(ctx context.Context, p, spec string) error {
	_, err := s.faultsCall(ctx, http.MethodPut, p, spec)
	return err
}

func (s *sandboxProc) faultsCall(ctx context.Context, method, p, body string) (faultsView, error) {
	var v faultsView
	req, err := http.NewRequestWithContext(ctx, method, s.URL+"/"+p+faults.FaultsPath, strings.NewReader(body))
	if err != nil {
		return v, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("bench: %s %s faults: %d %s", method, p, resp.StatusCode, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("bench: %s faults: %w", p, err)
	}
	return v, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
