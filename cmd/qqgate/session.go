package main

import "context"

// cmdSession is `qqgate session`. TODO(store): being written.
func cmdSession(ctx context.Context, args []string, e *env) int { return e.errorf("session: not built yet") }
