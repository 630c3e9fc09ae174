// main.go is the entry point: it picks a subcommand (or the broker), runs it,
// and turns its result into an exit code. No protocol logic lives here.
//
// Exit codes everywhere: 0 done, 1 the operation failed, 2 bad usage.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes shared by every command.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// A command is one subcommand of the binary. Files register theirs in init,
// so adding a command touches only its own file.
type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

var commands = map[string]*command{}

func registerCommand(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

func init() {
	registerCommand(&command{name: "version", summary: "print version, Go version and OS/arch", run: runVersion})
	registerCommand(&command{name: "help", summary: "print the broker's options and the commands", run: runHelp})
}

// runHelp is "comet help": the broker's --help, and with a command's name
// that command's own help.
func runHelp(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] != "help" {
		if c, ok := commands[args[0]]; ok {
			return c.run([]string{"--help"}, stdin, stdout, stderr)
		}
		fmt.Fprintf(stderr, "comet help: no command %q (commands: %s)\n", args[0], strings.Join(commandNames(), ", "))
		return exitUsage
	}
	return brokerMain([]string{"--help"}, stdout, stderr)
}

func runVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "comet version: takes no arguments")
		return exitUsage
	}
	fmt.Fprintf(stdout, "comet %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// commandNames lists the registered subcommands in name order, for help text.
func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// dispatch chooses what to run from the program name and arguments.
func dispatch(argv0 string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if filepath.Base(argv0) == "comet-sendvo" {
		if c, ok := commands["sendvo"]; ok {
			return c.run(args, stdin, stdout, stderr)
		}
	}
	if len(args) > 0 {
		if c, ok := commands[args[0]]; ok {
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	return brokerMain(args, stdout, stderr)
}

func main() {
	os.Exit(dispatch(os.Args[0], os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
