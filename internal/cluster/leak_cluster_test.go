//go:build cluster

package cluster

import "go.uber.org/goleak"

// The embedded etcd server leaves a few process-wide goroutines behind.
var leakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	goleak.IgnoreAnyFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
}
