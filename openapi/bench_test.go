package openapi_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/openapi"
)

// BenchmarkSend measures replies per second through the fake platform over
// loopback HTTP: a c2c text reply each, with token, headers, msg_seq
// numbering, the fake's checks and its records.
func BenchmarkSend(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel bool
	}{{"serial", false}, {"parallel", true}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, func(c *openapi.Config) { c.Limits = openapi.NoLimits() })
			e.srv.SetReplyLimits(noFakeLimits())
			in := e.inbound(b, "C2C_MESSAGE_CREATE")
			ctx := context.Background()
			_, err := e.api.ReplyText(ctx, in, "warm-up")
			require.NoError(b, err)
			b.ReportAllocs()
			b.ResetTimer()
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := e.api.ReplyText(ctx, in, "benchmark"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for b.Loop() {
					if _, err := e.api.ReplyText(ctx, in, "benchmark"); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
		})
	}
}
