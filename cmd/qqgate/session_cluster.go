package main

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/qqgate/qqgate/internal/cluster"
	"github.com/qqgate/qqgate/internal/runner"
	"github.com/qqgate/qqgate/sessionstore"
)

// sessionStore is what `qqgate session` needs of a store: the record
// files, or a cluster's records in etcd.
type sessionStore interface {
	sessionstore.Store
	// Peek returns the record as stored, expired or not.
	Peek(ctx context.Context, accountID string) (sessionstore.Record, error)
	// Path names where the account's record is.
	Path(accountID string) string
	// Dir names where the records are.
	Dir() string
}

// configSessionStore opens the records of a runner configuration: with a
// cluster: block, the cluster's records in etcd (its endpoints, prefix,
// credentials and TLS); otherwise the file's session directory.
func configSessionStore(path string, e *env) (sessionStore, func(), error) {
	cfg, err := runner.LoadConfig(path, e.getenv)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Cluster == nil {
		st, err := sessionstore.NewFileStore(sessionstore.FileStoreConfig{Dir: runner.SessionDir(cfg, e.getenv), Clock: envClock{e}})
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	}
	cli, err := cluster.Dial(*cfg.Cluster)
	if err != nil {
		return nil, nil, err
	}
	st := cluster.NewUnfencedStore(cli, cfg.Cluster.WithDefaults().Prefix, zerolog.Nop())
	return st, func() { st.Close(); cli.Close() }, nil
}
