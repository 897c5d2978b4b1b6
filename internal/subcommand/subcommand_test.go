package subcommand

import (
	"errors"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var got []string
	commands := map[string]func([]string) error{
		"ok":   func(args []string) error { got = args; return nil },
		"fail": func([]string) error { return errors.New("it broke") },
	}
	for _, tc := range []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"ok", "-n", "3"}, 0, ""},
		{[]string{"fail"}, 1, "tool: it broke\n"},
		{[]string{"nope"}, 2, "usage: tool ok|fail\n"},
		{nil, 2, "usage: tool ok|fail\n"},
	} {
		var stderr strings.Builder
		if status := run(tc.args, &stderr, "tool", "tool ok|fail", commands); status != tc.status || stderr.String() != tc.stderr {
			t.Errorf("%q: status %d, stderr %q; want %d, %q", tc.args, status, stderr.String(), tc.status, tc.stderr)
		}
	}
	if strings.Join(got, " ") != "-n 3" {
		t.Errorf("the subcommand got %q, want its arguments after its name", got)
	}
}
