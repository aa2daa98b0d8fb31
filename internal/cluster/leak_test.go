//go:build !cluster

package cluster

import "go.uber.org/goleak"

var leakOptions []goleak.Option
