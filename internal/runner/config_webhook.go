package runner

import (
	"fmt"
	"net"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Transports of an account.
const (
	TransportWebsocket = "websocket" // the WebSocket gateway (the default)
	TransportWebhook   = "webhook"   // the platform's HTTP callbacks
)

// IsWebhook reports whether the account's transport is the webhook.
func (a Account) IsWebhook() bool { return a.Transport == TransportWebhook }

// WebhookListener is the top-level webhook block: the one listener every
// webhook account is served on, routed by the X-Bot-Appid header.
type WebhookListener struct {
	Listen       string // address, e.g. ":8443"; "" means none
	Path         string // URL path; "" means /
	TLSCertFile  string // certificate chain (PEM); with TLSKeyFile, serve HTTPS
	TLSKeyFile   string
	InsecureHTTP bool // plain HTTP on an address that is not loopback (a TLS-terminating proxy in front)
	// MaxAge, when positive, refuses pushes whose signed timestamp is
	// further than this from now (replays); off by default.
	MaxAge time.Duration
}

// ErrWebhookPlainHTTP is wrapped by the error of a webhook listener that
// would serve plain HTTP on an address that is not loopback.
var ErrWebhookPlainHTTP = fmt.Errorf("webhook listener: plain HTTP on an address that is not loopback")

// Check reports a listener that cannot be served: a certificate without its
// key (or the reverse), a path not starting with /, or plain HTTP on an
// address other than loopback without InsecureHTTP. The platform calls
// only HTTPS URLs: plain HTTP is for a TLS-terminating proxy in front.
func (w WebhookListener) Check() error {
	if (w.TLSCertFile == "") != (w.TLSKeyFile == "") {
		return fmt.Errorf("webhook listener: give both the TLS certificate and its key (--tls-cert and --tls-key, or webhook.tls_cert_file and webhook.tls_key_file)")
	}
	if w.Path != "" && !strings.HasPrefix(w.Path, "/") {
		return fmt.Errorf("webhook listener: path %q must start with /", w.Path)
	}
	if w.Listen == "" || w.TLSCertFile != "" || w.InsecureHTTP {
		return nil
	}
	host, _, err := net.SplitHostPort(w.Listen)
	if err != nil {
		return fmt.Errorf("webhook listener: address %q: %v", w.Listen, err)
	}
	if !loopbackHost(host) {
		return fmt.Errorf("%w (%s): give a TLS certificate and key (--tls-cert/--tls-key), or pass --webhook-insecure-http (webhook.insecure_http: true) when a TLS-terminating proxy is in front", ErrWebhookPlainHTTP, w.Listen)
	}
	return nil
}

// loopbackHost reports whether host names only the loopback interface.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// webhook reads the webhook block.
func (p *parser) webhook(n *yaml.Node) (WebhookListener, error) {
	var w WebhookListener
	f, err := p.fields(n, "webhook", "listen", "path", "tls_cert_file", "tls_key_file", "insecure_http", "max_age")
	if err != nil {
		return w, err
	}
	for k, dst := range map[string]*string{"listen": &w.Listen, "path": &w.Path, "tls_cert_file": &w.TLSCertFile, "tls_key_file": &w.TLSKeyFile} {
		if v := f[k]; v != nil {
			if *dst, err = p.str(v, "webhook."+k); err != nil {
				return w, err
			}
		}
	}
	if v := f["insecure_http"]; v != nil {
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			return w, p.errAt(v, "webhook.insecure_http", "must be true or false, not %q", v.Value)
		}
		w.InsecureHTTP = strings.EqualFold(v.Value, "true")
	}
	if v := f["max_age"]; v != nil {
		str, err := p.str(v, "webhook.max_age")
		if err != nil {
			return w, err
		}
		if w.MaxAge, err = time.ParseDuration(str); err != nil || w.MaxAge <= 0 {
			return w, p.errAt(v, "webhook.max_age", "%q is not a positive duration such as 10m", str)
		}
	}
	if w.Path != "" && !strings.HasPrefix(w.Path, "/") {
		return w, p.errAt(f["path"], "webhook.path", "%q must start with /", w.Path)
	}
	if (w.TLSCertFile == "") != (w.TLSKeyFile == "") {
		return w, p.errAt(n, "webhook", "give both tls_cert_file and tls_key_file, or neither")
	}
	return w, nil
}

// transport reads an account's transport.
func (p *parser) transport(n *yaml.Node, key string) (string, error) {
	if n == nil {
		return "", nil
	}
	s, err := p.str(n, key)
	if err != nil {
		return "", err
	}
	switch s {
	case TransportWebsocket:
		return "", nil // the default, stored as ""
	case TransportWebhook:
		return s, nil
	}
	return "", p.errAt(n, key, "%q is not websocket or webhook", s)
}

// webhookApps refuses two webhook accounts with one app id: the listener
// routes pushes by app id.
func (p *parser) webhookApps(cfg *Config, accs *yaml.Node) error {
	seen := map[string]string{}
	for i, a := range cfg.Accounts {
		if !a.IsWebhook() {
			continue
		}
		if other, dup := seen[a.AppID]; dup {
			return p.errAt(accs.Content[i], fmt.Sprintf("accounts[%d].app_id", i), "account %q has app id %s, as webhook account %q: one listener routes pushes by app id", a.ID, a.AppID, other)
		}
		seen[a.AppID] = a.ID
	}
	return nil
}
