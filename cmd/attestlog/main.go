// Command attestlog is the one binary of attestlog: one subcommand per role
// (log, witness, publish, verify, audit, …). It only wires flags to the
// packages that do the work.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// A command is one subcommand. run receives the arguments after the
// subcommand name and returns an error to print; errUsage asks for the
// subcommand's usage to be shown with exit status 2.
type command struct {
	summary string
	run     func(args []string) error
}

// commands is filled by each cmd_*.go file's init function, so that adding a
// subcommand touches only its own file.
var commands = map[string]command{}

func register(name, summary string, run func(args []string) error) {
	if _, dup := commands[name]; dup {
		panic("duplicate command " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

// errUsage is returned by a subcommand when its flags were wrong; the flag
// package has already printed the reason and the usage.
var errUsage = errors.New("usage")

// exitError carries a specific exit status (for example 1 for "verification
// failed" as opposed to 2 for "bad usage").
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usage() {
	fmt.Fprintf(os.Stderr, "attestlog — a transparency log and auditor for confidential-computing releases\n\nUsage: attestlog COMMAND [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-22s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'attestlog COMMAND -h' for a command's flags.\n")
}

// groupUsage lists the commands of a group ("log" for "log serve", …) and
// reports whether name is a group.
func groupUsage(name string) bool {
	var names []string
	for n := range commands {
		if strings.HasPrefix(n, name+" ") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return false
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "Usage: attestlog %s COMMAND [flags]\n\nCommands:\n", name)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-22s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'attestlog %s COMMAND -h' for a command's flags.\n", name)
	return true
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	rest := args[1:]
	// Two-word commands ("log serve", "witness add-log") are registered
	// under their joined name.
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		if _, ok := commands[name+" "+rest[0]]; ok {
			name, rest = name+" "+rest[0], rest[1:]
		}
	}
	c, ok := commands[name]
	if !ok && groupUsage(name) {
		// "attestlog log" (or "attestlog log -h"): the group's commands.
		if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help") {
			return 0
		}
		if len(rest) > 0 {
			fmt.Fprintf(os.Stderr, "\nattestlog: unknown command %q\n", name+" "+rest[0])
		}
		return 2
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "attestlog: unknown command %q\n\n", strings.Join(args[:min(2, len(args))], " "))
		usage()
		return 2
	}
	err := c.run(rest)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(os.Stderr, "attestlog %s: %v\n", name, err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// newFlagSet returns a FlagSet for a subcommand whose usage line shows how
// to call it.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("attestlog "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: attestlog %s %s\n\nFlags:\n", name, fullSynopsis(fs, synopsis))
		fs.PrintDefaults()
	}
	return fs
}

// fullSynopsis is synopsis with every flag it does not mention appended
// as [--name], so that the usage line lists every flag.
func fullSynopsis(fs *flag.FlagSet, synopsis string) string {
	mentioned := func(n string) bool {
		for i := 0; ; {
			j := strings.Index(synopsis[i:], "--"+n)
			if j < 0 {
				return false
			}
			end := i + j + 2 + len(n)
			if end == len(synopsis) || !isFlagChar(synopsis[end]) {
				return true
			}
			i = end
		}
	}
	var extra []string
	fs.VisitAll(func(f *flag.Flag) {
		if !mentioned(f.Name) {
			extra = append(extra, "[--"+f.Name+"]")
		}
	})
	if len(extra) == 0 {
		return synopsis
	}
	if synopsis == "" {
		return strings.Join(extra, " ")
	}
	return synopsis + " " + strings.Join(extra, " ")
}

func isFlagChar(c byte) bool {
	return c == '-' || c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// usageError prints a message and the usage of fs, and returns errUsage.
func usageError(fs *flag.FlagSet, format string, a ...any) error {
	fmt.Fprintf(fs.Output(), format+"\n", a...)
	fs.Usage()
	return errUsage
}

// parseFlags parses args and maps flag errors to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 && !allowsArgs[fs.Name()] {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// allowsArgs lists the flag sets (by name) that take positional arguments.
var allowsArgs = map[string]bool{}
