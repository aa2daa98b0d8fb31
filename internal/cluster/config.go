// Package cluster runs the accounts of one configuration file on several
// `qqgate run` processes through etcd: each account runs on exactly one
// runner, the one holding its lease-backed ownership key; every session
// record write is fenced on that ownership; accounts are spread evenly
// over the live runners and move between them by graceful handover (the
// old owner closes with 4000 after writing the record, the new one
// RESUMEs); a runner that dies loses its lease and its accounts RESUME
// elsewhere.
//
// Keys, under the configured prefix (default /qqgate):
//
//	runners/<name>    a live runner, on its lease
//	owners/<account>  the owning runner's name, on its lease
//	sessions/<account> the account's session record (the openclaw JSON)
//	state/<account>   the owner's view of the account (for /status), on its lease
package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults of [Config].
const (
	DefaultPrefix   = "/qqgate"
	DefaultLeaseTTL = 5 * time.Second
	// MinLeaseTTL is the shortest lease_ttl accepted: etcd itself refuses
	// shorter leases on its default timing.
	MinLeaseTTL = 2 * time.Second
)

// Config is the top-level cluster block of the runner configuration.
type Config struct {
	// Name is this runner's name in the cluster; "" means hostname:pid.
	Name string
	// Endpoints are the etcd client URLs.
	Endpoints []string
	// Prefix is the key prefix of this cluster; "" means DefaultPrefix.
	Prefix string
	// LeaseTTL is the lease of a runner: how long after its last
	// keepalive its accounts move elsewhere. Zero means DefaultLeaseTTL;
	// it is rounded up to whole seconds (etcd leases count seconds).
	LeaseTTL time.Duration
	// Username and Password authenticate to etcd when Username is set.
	Username string
	// Password is read from PasswordFile; never printed.
	Password string
	// PasswordFile is where Password was read from.
	PasswordFile string
	// TLS files; all empty means plain connections.
	CAFile, CertFile, KeyFile string
}

// WithDefaults returns c with its defaults filled in.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "runner"
		}
		c.Name = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	c.Prefix = "/" + strings.Trim(c.Prefix, "/")
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if r := c.LeaseTTL % time.Second; r != 0 {
		c.LeaseTTL += time.Second - r
	}
	return c
}

// Validate checks the values a configuration file gave.
func (c Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("etcd.endpoints must list at least one endpoint")
	}
	for _, e := range c.Endpoints {
		if strings.TrimSpace(e) == "" {
			return errors.New("etcd.endpoints holds an empty endpoint")
		}
	}
	if c.LeaseTTL != 0 && c.LeaseTTL < MinLeaseTTL {
		return fmt.Errorf("etcd.lease_ttl must be at least %s", MinLeaseTTL)
	}
	if strings.ContainsAny(c.Name, "/\n") {
		return errors.New("name must not hold '/' or a newline")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("etcd.tls.cert_file and etcd.tls.key_file go together")
	}
	if c.Password != "" && c.Username == "" {
		return errors.New("etcd.password_file needs etcd.username")
	}
	return nil
}

// clientConfig is the etcd client configuration of c.
func (c Config) clientConfig() (clientv3.Config, error) {
	cc := clientv3.Config{
		Endpoints:            c.Endpoints,
		DialTimeout:          c.LeaseTTL,
		DialKeepAliveTime:    c.LeaseTTL,
		DialKeepAliveTimeout: c.LeaseTTL,
		Username:             c.Username,
		Password:             c.Password,
		AutoSyncInterval:     0,
		RejectOldCluster:     false,
	}
	if c.CAFile == "" && c.CertFile == "" {
		return cc, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return cc, fmt.Errorf("etcd.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cc, fmt.Errorf("etcd.tls.ca_file %s: no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return cc, fmt.Errorf("etcd.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	cc.TLS = tc
	return cc, nil
}

// Dial opens an etcd client for c (for `qqgate session` on the cluster's
// records); the caller closes it.
func Dial(c Config) (*clientv3.Client, error) {
	c = c.WithDefaults()
	cc, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	cc.Logger = nopZap()
	return clientv3.New(cc)
}
