package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/partners"
)

// docker-compose's healthcheck runs `etl sandbox --healthcheck` (the image
// has no shell or curl): it must tell a serving sandbox from none.
func TestSandboxHealthcheck(t *testing.T) {
	t.Parallel()
	sb := partners.NewSandboxes(nil)
	srv := httptest.NewServer(sb)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if r := etl(t, nil, "sandbox", "--healthcheck", "--listen", addr); r.code != exitOK {
		t.Fatalf("serving sandbox: %s", r)
	}
	srv.Close()
	if r := etl(t, nil, "sandbox", "--healthcheck", "--listen", addr); r.code == exitOK {
		t.Fatalf("closed sandbox reported healthy: %s", r)
	}
}
