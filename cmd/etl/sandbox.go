package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/sandbox"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdSandbox(ctx context.Context, args []string) int {
	fs := newFlags("sandbox", "sandbox [--listen ADDR] [--faults PARTNER=SPEC ...]", "Serve every partner sandbox under /<partner>/ with the demo credentials (scripts/demo-env.sh), state at\n/<partner>/_sandbox/state and fault control at /<partner>/_sandbox/faults (GET, or PUT a spec).",
		"etl sandbox --listen 127.0.0.1:18099", "etl sandbox --faults synctera=rate=200,latency=50ms --faults all=errors=0.2,seed=7",
		"curl -X PUT --data 'down=true' http://127.0.0.1:18099/q2open/_sandbox/faults")
	listen := fs.String("listen", "127.0.0.1:18099", "address to serve on (keep it on loopback)")
	var faults multiFlag
	fs.Var(&faults, "faults", "PARTNER=SPEC fault injection (PARTNER may be all), repeatable: rate=N,errors=F,latency=D,jitter=D,reset=F,drop=F,down=true,seed=N,retry-after=date")
	check := fs.Bool("healthcheck", false, "do not serve: exit 0 when a sandbox answers on --listen, 1 otherwise (container healthchecks; the image has no shell or curl)")
	if code, ok := parse(fs, args, 0); !ok {
		return code
	}
	if *check {
		return sandboxHealthcheck(ctx, *listen)
	}
	h, err := sandboxMux(faults)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(exitFatal, "sandbox: %v", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "etl sandbox listening on http://%s (partners: %s)\n", ln.Addr(), strings.Join(partners.Names(), ", "))
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fail(exitFatal, "sandbox: %v", err)
	}
	return exitOK
}

// sandboxHealthcheck asks the sandbox on addr for a partner's state: any
// HTTP answer within a few seconds means it serves.
func sandboxHealthcheck(ctx context.Context, addr string) int {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + addr + "/" + partners.Names()[0] + sandbox.StatePath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail(exitUsage, "sandbox --healthcheck: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(exitFatal, "sandbox --healthcheck: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(exitFatal, "sandbox --healthcheck: %s answered %s", url, resp.Status)
	}
	return exitOK
}

func sandboxMux(faultSpecs []string) (http.Handler, error) {
	return partners.SandboxMux(faultSpecs)
}
