// Package logx builds the zap logger: JSON lines for cron and log
// shippers, a console encoder on a terminal. Nothing logged by etl
// carries card data: PAN and CVV types mask themselves, and payloads are
// never logged.
package logx

import (
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
)

// New returns a logger writing to stderr at info (debug with verbose,
// warn with quiet).
func New(verbose, quiet bool) *zap.Logger {
	lvl := zapcore.InfoLevel
	if verbose {
		lvl = zapcore.DebugLevel
	} else if quiet {
		lvl = zapcore.WarnLevel
	}
	return NewTo(zapcore.Lock(os.Stderr), term.IsTerminal(int(os.Stderr.Fd())), lvl)
}

// NewTo logs to w (tests capture logs this way).
func NewTo(w zapcore.WriteSyncer, console bool, lvl zapcore.Level) *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if console {
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, w, lvl))
}
