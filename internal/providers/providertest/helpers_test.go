package providertest_test

import (
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/northwind-data/etl/internal/providers/providertest"
)

// echo answers 201 with a header and "got:" plus the request body.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Echo", r.Header.Get("X-In"))
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(append([]byte("got:"), b...))
})

func TestRecorderKeepsExchangesAndPassesAnswersOn(t *testing.T) {
	rec := providertest.NewRecorder(echo)
	url := providertest.Serve(t, rec)

	r := providertest.Call(t, http.MethodPost, url+"/a?x=1&y=2", map[string]string{"X-In": "v"}, map[string]int{"n": 1})
	if r.Status != http.StatusCreated || string(r.Body) != `got:{"n":1}` || r.Header.Get("X-Echo") != "v" {
		t.Fatalf("answer through the recorder: %+v", r)
	}
	m := rec.Mark()
	providertest.Call(t, http.MethodGet, url+"/b", nil, nil)
	providertest.Call(t, http.MethodPut, url+"/a", nil, "raw")

	if got, want := rec.Calls(0), []string{"POST /a", "GET /b", "PUT /a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Calls(0) %v, want %v", got, want)
	}
	if got := rec.Calls(m); !reflect.DeepEqual(got, []string{"GET /b", "PUT /a"}) {
		t.Errorf("Calls(mark) %v", got)
	}
	first := rec.All()[0]
	if first.Query != "x=1&y=2" || first.Params().Get("y") != "2" || first.Header.Get("X-In") != "v" ||
		string(first.Body) != `{"n":1}` || first.Status != http.StatusCreated || string(first.Resp) != `got:{"n":1}` {
		t.Errorf("first exchange %+v", first)
	}
	if a := rec.ByPath("/a"); len(a) != 2 || string(a[1].Body) != "raw" {
		t.Errorf("ByPath(/a) %+v", a)
	}
	if l := rec.Last(""); l.Method != http.MethodPut {
		t.Errorf("Last(\"\") %+v", l)
	}
	if l := rec.Last(http.MethodGet); l.Path != "/b" || len(l.Body) != 0 {
		t.Errorf("Last(GET) %+v", l)
	}
	if l := rec.Last(http.MethodDelete); l.Method != "" {
		t.Errorf("Last(DELETE) %+v, want none", l)
	}
}

func TestRawCallSendsOnlyWhatItIsGiven(t *testing.T) {
	seen := make(chan http.Header, 1)
	url := providertest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
	}))
	if _, err := providertest.RawCall(http.MethodPost, url, nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if h := providertest.Recv(t, seen); h.Get("Content-Type") != "" || h.Get("Authorization") != "" {
		t.Errorf("headers nobody asked for: %v", h)
	}
	if _, err := providertest.RawCall(http.MethodGet, "http://127.0.0.1:0/", nil, nil); err == nil {
		t.Error("no error from an unreachable address")
	}
	if _, err := providertest.RawCall(http.MethodPost, url, nil, func() {}); err == nil {
		t.Error("no error for a body that does not marshal")
	}
}

func TestWaitForAndRecvReturnOnceReady(t *testing.T) {
	done := make(chan struct{})
	close(done)
	providertest.WaitFor(t, done, "a closed channel")
	ch := make(chan int, 1)
	ch <- 7
	if v := providertest.Recv(t, ch); v != 7 {
		t.Errorf("Recv %d, want 7", v)
	}
}
