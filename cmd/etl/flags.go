package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// newFlags gives every subcommand the same help layout: usage line, what
// it does, flags, and examples.
func newFlags(name, usage, about string, examples ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: etl %s\n\n%s\n", usage, about)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(out, "\nFlags:\n")
			fs.PrintDefaults()
		}
		if len(examples) > 0 {
			fmt.Fprintf(out, "\nExamples:\n  %s\n", strings.Join(examples, "\n  "))
		}
	}
	return fs
}

// parse parses args; positional >= 0 demands exactly that many positional
// arguments (which may come before or after the flags). ok is false when
// the command should return code at once (-h gives 0, bad usage 2).
func parse(fs *flag.FlagSet, args []string, positional int) (code int, ok bool) {
	if positional > 0 {
		args = reorder(args)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false // flag already printed the error and usage
	}
	if positional >= 0 && fs.NArg() != positional {
		fmt.Fprintf(fs.Output(), "etl %s: expected %d argument(s), got %d\n\n", fs.Name(), positional, fs.NArg())
		fs.Usage()
		return exitUsage, false
	}
	return exitOK, true
}
