package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

func TestFourShardsDeliverExactlyOnceAndAKilledShardResumes(t *testing.T) {
	slow := faults.Config{Latency: 10 * time.Millisecond}
	e := newEnv(t, 240, everyPartner(slow))
	group := "shard-test"
	var procs []*lockedBuffer
	var killed int
	for i := 0; i < 4; i++ {
		c, out := e.start("--shard", fmt.Sprintf("%d/4", i), "--run-group", group)
		procs = append(procs, out)
		if i == 2 {
			time.Sleep(400 * time.Millisecond)
			kill(c)
			killed = i
			continue
		}
		defer func() { _ = c.Wait() }()
	}
	_ = procs
	// Wait for the three survivors.
	deadline := time.Now().Add(60 * time.Second)
	for e.scalar(`SELECT count(*) FROM runs WHERE run_group = $1 AND status <> 'running'`, group) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("shards did not finish")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := e.scalar(`SELECT count(DISTINCT shard_index) FROM runs WHERE run_group = $1`, group); n != 4 {
		t.Fatalf("%d shards recorded, want 4", n)
	}
	// Rerun the killed shard alone, in the same group.
	r := e.runETL("--shard", fmt.Sprintf("%d/4", killed), "--run-group", group)
	if r.code != 0 {
		t.Fatalf("rerun of shard %d: exit %d\n%s", killed, r.code, r.stdout)
	}
	e.exactlyOnce()
	if n := e.scalar(`SELECT count(*) FROM runs WHERE run_group = $1 AND status = 'crashed'`, group); n != 1 {
		t.Errorf("the killed shard's run is not marked crashed (%d)", n)
	}
	// Shards never overlap: no entity was created by two runs.
	if n := e.scalar(`SELECT count(*) FROM (SELECT provider, entity_key FROM ledger WHERE operation = 'create' AND outcome = 'ok' GROUP BY 1, 2 HAVING count(DISTINCT run_id) > 1) x`); n != 0 {
		t.Fatalf("%d entities created by more than one shard run", n)
	}
	// The group's report aggregates every shard.
	rep := e.run("report", group)
	if rep.code != 0 || strings.Count(rep.stdout, "(group "+group+", shard ") != 5 {
		t.Fatalf("report of the group: exit %d\n%s", rep.code, rep.stdout)
	}
	st := e.run("status")
	if !strings.Contains(st.stdout, group) {
		t.Fatalf("status does not list the group:\n%s", st.stdout)
	}
	for _, sp := range partners.All() {
		if got, _ := sp.Count(e.sb.Partners[sp.Name]); got == 0 {
			t.Errorf("%s received nothing", sp.Name)
		}
	}
	e.settled()
}
