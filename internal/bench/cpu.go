package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU is where the CPU time of one measurement went, in seconds, and how
// busy the whole machine was. It is what says what bounds a figure: a
// process near one core per GOMAXPROCS, or a machine near all its cores,
// is the limit; an idle machine means a latency or a lock is.
type CPU struct {
	Driver   float64 `json:"driver_s"`             // this process (the bare client, the naive loop)
	ETL      float64 `json:"etl_s,omitempty"`      // the etl run child
	Sandbox  float64 `json:"sandbox_s"`            // the sandbox process
	Postgres float64 `json:"postgres_s,omitempty"` // the cluster this program started (unknown for DATABASE_URL)
	// MachineCores is the average number of busy cores over the wall
	// time, every process on the machine included (others' load too).
	MachineCores float64 `json:"machine_busy_cores"`
}

// clkTck is USER_HZ, 100 on every Linux architecture Go supports.
const clkTck = 100

// procTicks returns utime+stime of pid and, with reaped, the cutime and
// cstime of its waited-for children (a postmaster reaps its backends, so
// that is how a closed connection's CPU is still counted).
func procTicks(pid int, reaped bool) (int64, int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name may hold spaces; fields start after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15,
	// cutime 16, cstime 17.
	if len(f) < 15 {
		return 0, 0, false
	}
	ppid, _ := strconv.Atoi(f[1])
	var t int64
	n := 2
	if reaped {
		n = 4
	}
	for k := 0; k < n; k++ {
		v, _ := strconv.ParseInt(f[11+k], 10, 64)
		t += v
	}
	return t, ppid, true
}

// treeCPU is the CPU seconds of pid, its reaped children and its live
// children (one level: enough for a postmaster and its backends).
func treeCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	total, _, ok := procTicks(pid, true)
	if !ok {
		return 0
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil || cpid == pid {
			continue
		}
		if t, ppid, ok := procTicks(cpid, false); ok && ppid == pid {
			total += t
		}
	}
	return float64(total) / clkTck
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// machineBusy returns busy and total jiffies from /proc/stat.
func machineBusy() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for k, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if k >= 8 { // guest time is already in user
			break
		}
		total += n
		if k != 3 && k != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// meter samples every CPU counter at the start of a measurement.
type meter struct {
	start             time.Time
	self, sandbox, pg float64
	busy, total       int64
	sandboxPID, pgPID int
}

func startMeter(sandboxPID, pgPID int) *meter {
	m := &meter{start: time.Now(), self: selfCPU(), sandboxPID: sandboxPID, pgPID: pgPID}
	m.sandbox = treeCPU(sandboxPID)
	m.pg = treeCPU(pgPID)
	m.busy, m.total = machineBusy()
	return m
}

// stop returns the CPU used since start and the wall time.
func (m *meter) stop() (CPU, time.Duration) {
	wall := time.Since(m.start)
	busy, total := machineBusy()
	c := CPU{Driver: selfCPU() - m.self, Sandbox: treeCPU(m.sandboxPID) - m.sandbox}
	if m.pgPID > 0 {
		c.Postgres = treeCPU(m.pgPID) - m.pg
	}
	if dt := total - m.total; dt > 0 {
		// total counts jiffies on every core, so busy/total is the busy
		// fraction of the machine.
		c.MachineCores = float64(busy-m.busy) / float64(dt) * float64(numCPU())
	}
	return c, wall
}

// postmasterPID reads the pid of a cluster from its data directory.
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

func numCPU() int { return runtime.NumCPU() }
