package crashpoint

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		spec    string
		name    string
		n       int64
		wantErr string
	}{
		{"", "", 0, ""},
		{"after-send:37", AfterSend, 37, ""},
		{" mid-plan ", MidPlan, 1, ""},
		{"after-intent:1", AfterIntent, 1, ""},
		{"after-sned:3", "", 0, "unknown crash point \"after-sned\""},
		{"after-send:0", "", 0, "n >= 1"},
		{"after-send:x", "", 0, "n >= 1"},
	} {
		name, n, err := Parse(c.spec)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Parse(%q) = %v, want error containing %q", c.spec, err, c.wantErr)
			}
			continue
		}
		if err != nil || name != c.name || n != c.n {
			t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d", c.spec, name, n, err, c.name, c.n)
		}
	}
}

func TestFromEnvRefusesAnUnknownName(t *testing.T) {
	t.Setenv(EnvVar, "after-everything:2")
	if err := FromEnv(); err == nil || !strings.Contains(err.Error(), "after-send") {
		t.Fatalf("FromEnv = %v, want an error listing the known points", err)
	}
	if armed.Load() != nil {
		t.Fatal("an invalid spec armed a point")
	}
}

// The n-th hit of the named point kills, once, whichever goroutine makes
// it; other points and other counts do nothing.
func TestTheNthHitKillsOnce(t *testing.T) {
	var mu sync.Mutex
	kills, settled := 0, 0
	kill = func() { mu.Lock(); kills++; mu.Unlock() }
	defer func() { kill = func() { _ = syscall.Kill(os.Getpid(), syscall.SIGKILL); select {} }; Arm("", 0) }()
	Arm(AfterSend, 50)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				Hit(AfterSend)
				Hit(MidPlan)
				HitAfter(AfterSend, func() { mu.Lock(); settled++; mu.Unlock() })
				HitUnless(AfterSend, errors.New("failed: not a hit"))
			}
		}()
	}
	wg.Wait()
	if kills != 1 {
		t.Fatalf("%d kills, want 1", kills)
	}
	if h := armed.Load().hits.Load(); h != 200 {
		t.Fatalf("%d hits counted, want 200 (Hit and HitAfter count, a failed HitUnless does not)", h)
	}
	_ = settled // 0 or 1: whether HitAfter or Hit made the 50th hit
}

func TestUnarmedHitIsFree(t *testing.T) {
	Arm("", 0)
	if a := testing.AllocsPerRun(1000, func() { Hit(AfterSend) }); a != 0 {
		t.Fatalf("Hit allocates %v times unarmed", a)
	}
}

// The real kill: the process dies by SIGKILL and no deferred function
// runs.
func TestKillIsSIGKILLWithoutDefers(t *testing.T) {
	if os.Getenv("CRASHPOINT_CHILD") == "1" {
		if err := FromEnv(); err != nil {
			os.Exit(7)
		}
		defer os.Stdout.WriteString("deferred ran\n")
		for range 3 {
			Hit(AfterLedgerCommit)
		}
		os.Stdout.WriteString("survived\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillIsSIGKILLWithoutDefers$")
	cmd.Env = append(os.Environ(), "CRASHPOINT_CHILD=1", EnvVar+"=after-ledger-commit:3")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended %v, want killed by SIGKILL\n%s", err, out)
	}
	if s := string(out); strings.Contains(s, "deferred ran") || strings.Contains(s, "survived") || !strings.Contains(s, "crashpoint: killed at after-ledger-commit:3") {
		t.Fatalf("child output:\n%s", s)
	}
}
