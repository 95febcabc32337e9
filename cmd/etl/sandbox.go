package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/northwind-data/etl/internal/partners"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdSandbox(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8099", "address to serve on (keep it on loopback)")
	var faults multiFlag
	fs.Var(&faults, "faults", "PARTNER=SPEC fault injection, repeatable, e.g. synctera=rate=200,errors=0.2,latency=50ms,seed=7 (see internal/sandbox/faults/README.md)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: etl sandbox [--listen ADDR] [--faults PARTNER=SPEC ...]\n\nServes every partner sandbox under /<partner>/ with the demo credentials, state at /<partner>/_sandbox/state\nand a fault control endpoint at /<partner>/_sandbox/faults.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if fs.Parse(args) != nil {
		return exitUsage
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

func sandboxMux(faultSpecs []string) (http.Handler, error) {
	return partners.SandboxMux(faultSpecs)
}
