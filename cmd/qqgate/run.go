package main

import "context"

// cmdRun is `qqgate run`. TODO(core): being written.
func cmdRun(ctx context.Context, args []string, e *env) int { return e.errorf("run: not built yet") }

// cmdDemo is `qqgate demo`. TODO(core): being written.
func cmdDemo(ctx context.Context, args []string, e *env) int { return e.errorf("demo: not built yet") }
