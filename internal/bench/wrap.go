package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// Why a wrapper: on Linux a child's ru_maxrss is not its own peak. Go
// starts children with clone(CLONE_VM|CLONE_VFORK), so until exec the
// child runs on the parent's address space, and exec records that
// address space's high-water mark in the child's maxrss. Started straight
// from this driver (hundreds of MiB after preparing payloads), every
// `etl run` would report the driver's peak. So the driver re-executes
// itself as a small wrapper whose only job is to start etl and report its
// rusage: the wrapper's own high-water mark is a few MiB, far below etl's.

// wrapEnv names the file the wrapper writes the child's usage to; its
// presence makes the process a wrapper.
const wrapEnv = "BENCH_RSS_WRAPPER_OUT"

var wrapperReady bool

// ServeWrapper must be the first call in the main of a program that runs
// Run: when the process was started as the RSS wrapper it runs the
// command in os.Args[1:], writes its usage and exits with its code;
// otherwise it returns at once and lets etl runs go through the wrapper.
func ServeWrapper() {
	out := os.Getenv(wrapEnv)
	if out == "" {
		wrapperReady = true
		return
	}
	os.Unsetenv(wrapEnv)
	os.Exit(serveWrapper(out, os.Args[1:]))
}

type childUsage struct {
	Exit      int     `json:"exit"`
	MaxRSSKiB int64   `json:"maxrss_kib"`
	CPU       float64 `json:"cpu_s"`
	Wall      float64 `json:"wall_s"`
}

func serveWrapper(out string, argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "bench wrapper: no command")
		return 2
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "bench wrapper: %v\n", err)
		return 1
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	u := childUsage{Wall: time.Since(start).Seconds()}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintf(os.Stderr, "bench wrapper: %v\n", err)
		return 1
	}
	st := cmd.ProcessState
	u.Exit = st.ExitCode()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		u.MaxRSSKiB = ru.Maxrss // KiB on Linux
	}
	u.CPU = (st.UserTime() + st.SystemTime()).Seconds()
	b, _ := json.Marshal(u)
	if err := os.WriteFile(out, b, 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "bench wrapper: %v\n", err)
		return 1
	}
	return max(u.Exit, 0)
}

// runChild runs argv with env through the wrapper (when ServeWrapper was
// called) and returns its usage. Without the wrapper the RSS is the
// child's ru_maxrss as the kernel reports it, which may be the driver's.
func runChild(ctx context.Context, argv, env []string, stderr *limitedBuffer) (childUsage, error) {
	var u childUsage
	name, args := argv[0], argv[1:]
	var out string
	if wrapperReady {
		self, err := os.Executable()
		if err != nil {
			return u, err
		}
		f, err := os.CreateTemp("", "etl-bench-usage-")
		if err != nil {
			return u, err
		}
		out = f.Name()
		f.Close()
		defer os.Remove(out)
		name, args = self, argv
		env = append(env, wrapEnv+"="+out)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Stderr = stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return u, err
	}
	if out == "" {
		st := cmd.ProcessState
		u = childUsage{Exit: st.ExitCode(), CPU: (st.UserTime() + st.SystemTime()).Seconds(), Wall: wall.Seconds()}
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			u.MaxRSSKiB = ru.Maxrss
		}
		return u, nil
	}
	b, rerr := os.ReadFile(out)
	if rerr != nil || json.Unmarshal(b, &u) != nil {
		return u, fmt.Errorf("bench: the wrapper reported no usage (exit %d): %s", cmd.ProcessState.ExitCode(), tail(stderr.String(), 400))
	}
	return u, nil
}

// limitedBuffer keeps the last n bytes written (a child's stderr), and
// copies everything to all when set (the mixed mode reads the run's
// debug log).
type limitedBuffer struct {
	n   int
	buf []byte
	all io.Writer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.all != nil {
		if _, err := b.all.Write(p); err != nil {
			return 0, err
		}
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.n {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.n:]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return string(b.buf) }
