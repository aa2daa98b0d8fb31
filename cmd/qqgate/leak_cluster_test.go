//go:build cluster

package main

import "go.uber.org/goleak"

// leakOptions: the embedded etcd server of the cluster tests leaves a few
// process-wide goroutines behind.
var leakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	goleak.IgnoreAnyFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
}
