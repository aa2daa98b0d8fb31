// Command qqgate runs QQ bots on the gateway and manages their session
// records. See README.md for the subcommands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() { // lives as long as the process
		<-sigs
		cancel() // the first signal: graceful shutdown
		<-sigs
		fmt.Fprintln(os.Stderr, "qqgate: second signal: exiting now")
		os.Exit(1)
	}()
	code := run(ctx, os.Args[1:], &env{
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		now:    time.Now,
	})
	cancel()
	os.Exit(code)
}

// env is what a subcommand may touch of the outside world; tests pass
// their own.
type env struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time
}

// errorf prints one line on stderr and returns exit status 1.
func (e *env) errorf(format string, args ...any) int {
	fmt.Fprintf(e.stderr, "qqgate: "+format+"\n", args...)
	return 1
}

const usage = `usage: qqgate <command> [flags]

commands:
  run       run bot accounts on the gateway (events as JSON lines on stdout)
  demo      run against an embedded fake gateway; needs no account or network
  send      send one message as a bot (the platform's answer as a JSON line)
  session   list, show, clear or clean up session records
  status    show the accounts of a running runner (its --listen address)
  version   print the version
`

// run dispatches to a subcommand and returns the exit status.
func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], e)
	case "demo":
		return cmdDemo(ctx, args[1:], e)
	case "send":
		return cmdSend(ctx, args[1:], e)
	case "session":
		return cmdSession(ctx, args[1:], e)
	case "status":
		return cmdStatus(ctx, args[1:], e)
	case "version":
		fmt.Fprintln(e.stdout, versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return 0
	}
	fmt.Fprintf(e.stderr, "qqgate: unknown command %q\n\n%s", args[0], usage)
	return 2
}
