// cmd_validate.go is `comet validate`: the receiver's checks (checkSubmission)
// run on event files, so an author can see before publishing whether a
// broker would accept an event, and why not.
//
// Exit status: without --tsv, 0 if every file is valid and 1 otherwise. With
// --tsv the table is the result, so the status is 0 once every file has been
// judged and 1 only if a file could not be read. Bad usage is 2.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func init() {
	registerCommand(&command{
		name:    "validate",
		summary: "check event files as the receiver checks a submitted event",
		run:     runValidate,
	})
}

func runValidate(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tsv := fs.Bool("tsv", false, "print a tab-separated table: file, verdict, reason")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: comet validate [--tsv] PATH...")
		fmt.Fprintln(stderr, "A PATH that is a directory means every *.xml file in it, in name order.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "comet validate: no files given")
		fs.Usage()
		return exitUsage
	}
	files, err := expandPaths(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "comet validate: %v\n", err)
		return exitFail
	}
	if *tsv {
		fmt.Fprintln(stdout, "file\tverdict\treason")
	}
	unreadable, invalid := false, false
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "comet validate: %v\n", err)
			unreadable = true
			continue
		}
		_, _, rej := checkSubmission(raw)
		switch {
		case *tsv && rej == nil:
			fmt.Fprintf(stdout, "%s\tvalid\t-\n", f)
		case *tsv:
			fmt.Fprintf(stdout, "%s\tinvalid\t%s\n", f, tsvEscape(rej.Error()))
		case rej == nil:
			fmt.Fprintf(stdout, "%s: valid\n", f)
		default:
			fmt.Fprintf(stdout, "%s: invalid: %s\n", f, oneLine(rej.Error()))
		}
		if rej != nil {
			invalid = true
		}
	}
	if unreadable || (invalid && !*tsv) {
		return exitFail
	}
	return exitOK
}

// oneLine makes s printable on one line for the readable output.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F {
			return ' '
		}
		return r
	}, s)
}
