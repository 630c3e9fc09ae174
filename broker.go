package main

import (
	"fmt"
	"io"
)

// brokerMain runs the broker with the options of twistd comet.
func brokerMain(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "comet: no service requested (use --receive, --broadcast or --remote)")
	return exitUsage
}
