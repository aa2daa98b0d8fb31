package main

import (
	"flag"

	"github.com/qqgate/qqgate/internal/runner"
)

// webhookFlags are the webhook flags of `qqgate run`.
type webhookFlags struct {
	transport    string
	listen, path string
	cert, key    string
	insecureHTTP bool
}

func (w *webhookFlags) register(fs *flag.FlagSet, def func(name, fallback string) string) {
	fs.StringVar(&w.transport, "transport", def("QQGATE_TRANSPORT", ""), "how events arrive: websocket (the gateway, default) or webhook (the platform's HTTP callbacks; needs --webhook-listen) (env QQGATE_TRANSPORT)")
	fs.StringVar(&w.listen, "webhook-listen", def("QQGATE_WEBHOOK_LISTEN", ""), "serve the webhook callback on this address, e.g. :8443 (env QQGATE_WEBHOOK_LISTEN)")
	fs.StringVar(&w.path, "webhook-path", def("QQGATE_WEBHOOK_PATH", ""), "URL path of the webhook callback (env QQGATE_WEBHOOK_PATH; default /)")
	fs.StringVar(&w.cert, "tls-cert", "", "TLS certificate chain (PEM) of the webhook listener")
	fs.StringVar(&w.key, "tls-key", "", "TLS private key (PEM) of the webhook listener")
	fs.BoolVar(&w.insecureHTTP, "webhook-insecure-http", false, "serve the webhook over plain HTTP on an address that is not loopback (a TLS-terminating proxy in front)")
}

func (w *webhookFlags) listener() runner.WebhookListener {
	return runner.WebhookListener{Listen: w.listen, Path: w.path, TLSCertFile: w.cert, TLSKeyFile: w.key, InsecureHTTP: w.insecureHTTP}
}
