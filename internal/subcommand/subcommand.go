// Package subcommand runs the subcommand a load tool's first argument
// names (mcload fill, mcsoak probe …), as each of internal/cmd's tools
// does.
package subcommand

import (
	"fmt"
	"io"
	"os"
)

// Main runs the subcommand of tool that os.Args[1] names, with the
// arguments after it, and exits: 1 if it failed (printing its error), 2
// with usage if none or an unknown one was named.
func Main(tool, usage string, commands map[string]func(args []string) error) {
	os.Exit(run(os.Args[1:], os.Stderr, tool, usage, commands))
}

// run is Main's work, returning the exit status.
func run(args []string, stderr io.Writer, tool, usage string, commands map[string]func([]string) error) int {
	if len(args) == 0 || commands[args[0]] == nil {
		fmt.Fprintln(stderr, "usage:", usage)
		return 2
	}
	if err := commands[args[0]](args[1:]); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", tool, err)
		return 1
	}
	return 0
}
