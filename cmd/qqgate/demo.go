package main

import "context"

// cmdDemo is `qqgate demo`. TODO(core): being written.
func cmdDemo(ctx context.Context, args []string, e *env) int { return e.errorf("demo: not built yet") }
