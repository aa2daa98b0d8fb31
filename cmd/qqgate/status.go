package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/qqgate/qqgate/internal/ops"
)

// defaultListen is the ops server address of `qqgate run --listen` that
// `qqgate status` reads when neither --listen, --url nor QQGATE_LISTEN
// says otherwise.
const defaultListen = "127.0.0.1:9464"

// statusTimeout bounds the whole GET of /status.
const statusTimeout = 10 * time.Second

// maxStatusBody caps the /status body read.
const maxStatusBody = 16 << 20

// cmdStatus implements `qqgate status [--listen ADDR | --url URL] [--json]`:
// it reads /status of a running runner and prints a table, or the JSON as
// served with --json.
func cmdStatus(ctx context.Context, args []string, e *env) int {
	fs := flag.NewFlagSet("qqgate status", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	def := e.getenv("QQGATE_LISTEN")
	if def == "" {
		def = defaultListen
	}
	listen := fs.String("listen", def, "address of the runner's ops server (env QQGATE_LISTEN)")
	rawURL := fs.String("url", "", "URL of the runner's ops server or of its /status (instead of --listen)")
	asJSON := fs.Bool("json", false, "print the JSON as served instead of a table")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		return e.safeErrorf("status: unexpected argument %q", fs.Arg(0))
	}
	listenSet := false
	fs.Visit(func(f *flag.Flag) { listenSet = listenSet || f.Name == "listen" })
	if listenSet && *rawURL != "" {
		return e.errorf("status: use --listen or --url, not both")
	}
	target, err := statusURL(*listen, *rawURL)
	if err != nil {
		return e.safeErrorf("status: %v", err)
	}

	body, err := fetchStatus(ctx, target)
	if err != nil {
		return e.safeErrorf("status: %v", err)
	}
	var accounts []ops.AccountStatus
	if err := json.Unmarshal(body, &accounts); err != nil {
		return e.safeErrorf("status: %s did not answer a status array: %v", target, err)
	}
	if *asJSON {
		// As served, but terminal-safe: the strings may hold anything.
		body = jsonTermSafe(bytes.TrimRight(body, "\n"))
		fmt.Fprintf(e.stdout, "%s\n", body)
		return 0
	}
	printStatusTable(e.stdout, accounts)
	return 0
}

// statusURL is the /status URL of --url (a base URL or the /status URL
// itself) or of --listen (host:port; an empty or unspecified host means
// loopback).
func statusURL(listen, raw string) (string, error) {
	if raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("--url %q: want http://host:port[/status]", raw)
		}
		p := strings.TrimRight(u.Path, "/")
		if !strings.HasSuffix(p, "/status") {
			p += "/status"
		}
		u.Path = p
		return u.String(), nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: want host:port", listen)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // the runner listens on every address
	}
	return "http://" + net.JoinHostPort(host, port) + "/status", nil
}

// fetchStatus GETs target and returns the body of a 200 answer.
func fetchStatus(ctx context.Context, target string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("cannot reach the runner at %s: %v (is `qqgate run --listen` running there?)", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody))
	if err != nil {
		return nil, fmt.Errorf("read %s: %v", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", target, resp.Status)
	}
	return body, nil
}

// printStatusTable prints one row per account.
func printStatusTable(w io.Writer, accounts []ops.AccountStatus) {
	if len(accounts) == 0 {
		fmt.Fprintln(w, "no accounts")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// A cluster's runner names each account's owner: an OWNER column.
	clustered := false
	for _, a := range accounts {
		clustered = clustered || a.Owner != ""
	}
	owner := func(a ops.AccountStatus) string { return "" }
	if clustered {
		owner = func(a ops.AccountStatus) string { return cell(a.Owner) + "\t" }
		fmt.Fprint(tw, "ACCOUNT\tOWNER\t")
	} else {
		fmt.Fprint(tw, "ACCOUNT\t")
	}
	fmt.Fprintln(tw, "STATE\tSESSION\tSEQ RECV\tSEQ COMMITTED\tRESUMES\tRECONNECTS\tLAST CLOSE\tERROR")
	for _, a := range accounts {
		state := a.State
		if a.State == "waiting" && a.NextRetryMs > 0 {
			state += " " + (time.Duration(a.NextRetryMs * float64(time.Millisecond))).Round(time.Millisecond).String()
		}
		closeCode := "-"
		if a.LastCloseCode != 0 {
			closeCode = strconv.Itoa(a.LastCloseCode)
		}
		errText := a.Fatal
		if errText == "" {
			errText = a.LastError
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n",
			cell(a.ID), owner(a), cell(state), cell(a.SessionID), a.LastSeqReceived, a.LastSeqCommitted,
			a.Resumes, a.Reconnects, closeCode, cell(errText))
	}
	tw.Flush()
}

// cell makes s one table cell: "-" when empty, on one line, without tabs,
// and terminal-safe (termSafe): the text comes from the network.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return termSafe(strings.Join(strings.Fields(s), " "))
}
