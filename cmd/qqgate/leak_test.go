//go:build !cluster

package main

import "go.uber.org/goleak"

// leakOptions are the goroutines TestMain's leak check ignores.
var leakOptions []goleak.Option
