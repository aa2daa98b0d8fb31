package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/qqgate/qqgate/client"
	"github.com/qqgate/qqgate/internal/reply"
	"github.com/qqgate/qqgate/internal/runner"
	"github.com/qqgate/qqgate/openapi"
)

// sendOptions are the flags of `qqgate send`.
type sendOptions struct {
	config, account           string
	appID, secret, secretFile string
	apiBase, tokenURL         string
	logLevel                  string
	logFormat                 string
	user, group, channel, dm  string
	replyTo, eventID          string
	seq                       int
	markdown                  bool
}

const sendUsage = `usage: qqgate send [--config FILE --account ID | --app-id ID --secret-file FILE ...]
                   (--user OPENID | --group OPENID | --channel ID | --dm GUILD_ID)
                   [--reply-to MSG_ID | --event-id ID] [--seq N] [--markdown] TEXT|-

Sends one message as the bot and prints the platform's answer as one JSON
line. TEXT "-" reads the text from stdin. Without --seq, a QQ user or group
message that answers one (--reply-to, --event-id) gets a fresh random
msg_seq that collides with no handler reply; with --seq, a 40054005 answer
means the message was already delivered (exit 0, "already_delivered":true).
A refused message exits 1 with one line: HTTP status, code, message, trace id.

flags:
`

func cmdSend(ctx context.Context, args []string, e *env) int {
	fs := flag.NewFlagSet("qqgate send", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, sendUsage)
		fs.PrintDefaults()
	}
	var o sendOptions
	def := func(name, fallback string) string {
		if v := e.getenv(name); v != "" {
			return v
		}
		return fallback
	}
	fs.StringVar(&o.config, "config", def("QQGATE_CONFIG", ""), "YAML file of accounts, as for run (env QQGATE_CONFIG); pick one with --account")
	fs.StringVar(&o.account, "account", "", "with --config: the account to send as (default: the file's only account)")
	fs.StringVar(&o.appID, "app-id", def("QQBOT_APP_ID", ""), "bot app id (env QQBOT_APP_ID)")
	fs.StringVar(&o.secret, "secret", def("QQBOT_CLIENT_SECRET", ""), "client secret (env QQBOT_CLIENT_SECRET); prefer --secret-file")
	fs.StringVar(&o.secretFile, "secret-file", "", "file holding the client secret")
	fs.StringVar(&o.apiBase, "api-base", def("QQBOT_API_BASE", client.DefaultAPIBase), "OpenAPI base URL (env QQBOT_API_BASE)")
	fs.StringVar(&o.tokenURL, "token-url", def("QQBOT_TOKEN_URL", client.DefaultTokenURL), "access token URL (env QQBOT_TOKEN_URL)")
	fs.StringVar(&o.logLevel, "log-level", "error", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", def("QQGATE_LOG_FORMAT", logAuto), logFormatUsage)
	fs.StringVar(&o.user, "user", "", "send to the QQ user of this openid (c2c)")
	fs.StringVar(&o.group, "group", "", "send to the QQ group of this openid")
	fs.StringVar(&o.channel, "channel", "", "send to this guild text channel")
	fs.StringVar(&o.dm, "dm", "", "send to this guild direct-message session (its guild id)")
	fs.StringVar(&o.replyTo, "reply-to", "", "reply to this inbound message id (msg_id): a passive message")
	fs.StringVar(&o.eventID, "event-id", "", "reply to this inbound event id (event_id): a passive message")
	fs.IntVar(&o.seq, "seq", 0, "msg_seq to send with (QQ user and group messages); default a fresh random one")
	fs.BoolVar(&o.markdown, "markdown", false, "send TEXT as markdown (msg_type 2)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, args ...any) int {
		fmt.Fprintf(e.stderr, "qqgate: send: "+format+"\n\n", args...)
		fs.Usage()
		return 2
	}
	t, err := o.target()
	if err != nil {
		return usage("%v", err)
	}
	if fs.NArg() == 0 {
		return usage("no TEXT to send (give it, or - to read stdin)")
	}
	text := strings.Join(fs.Args(), " ")
	if fs.NArg() == 1 && fs.Arg(0) == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, reply.MaxOutput+1))
		if err != nil {
			return e.errorf("send: read stdin: %v", err)
		}
		if len(b) > reply.MaxOutput {
			return e.errorf("send: stdin holds more than %d bytes", reply.MaxOutput)
		}
		text = string(b)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return e.errorf("send: the text is empty")
	}
	m := openapi.Text(text)
	if o.markdown {
		m = openapi.Markdown(text)
	}
	v2 := t.Kind == openapi.KindC2C || t.Kind == openapi.KindGroup
	switch {
	case o.seq != 0 && !v2:
		return usage("--seq is for --user and --group messages; %s messages have no msg_seq", t.Kind)
	case o.seq < 0 || o.seq > openapi.FreshSeqMax:
		return usage("--seq %d is not in 1..%d", o.seq, openapi.FreshSeqMax)
	case o.seq != 0:
		m.MsgSeq = o.seq
	case v2 && (t.MsgID != "" || t.EventID != ""):
		m.MsgSeq = openapi.FreshMsgSeq()
	}

	log, err := newLogger(e.stderr, o.logLevel, o.logFormat)
	if err != nil {
		return e.errorf("send: %v", err)
	}
	appID, secret, apiBase, tokenURL, account, err := o.credentials(fs, e)
	if err != nil {
		return e.errorf("send: %v", err)
	}
	// The same endpoint checks as run: plain http only on loopback.
	if _, err := client.New(client.Config{AppID: appID, ClientSecret: secret, APIBase: apiBase, TokenURL: tokenURL}); err != nil {
		return e.errorf("send: %v", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	api, err := openapi.New(openapi.Config{
		AppID:   appID,
		Tokens:  client.NewAppTokenSource(appID, secret, tokenURL, nil),
		BaseURL: apiBase,
		HTTPClient: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Logger: log,
	})
	if err != nil {
		return e.errorf("send: %v", err)
	}
	res, err := reply.NewSender(api, account, nil, log).SendOut(ctx, t, reply.Out{Msg: *m})
	if err != nil {
		seq := 0
		if v2 && (t.MsgID != "" || t.EventID != "") {
			seq = m.MsgSeq
		}
		return e.errorf("send: %s", describeSendError(err, seq))
	}
	b, err := json.Marshal(reply.ResultOf(res))
	if err != nil {
		return e.errorf("send: encode the answer: %v", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", b)
	return 0
}

// target reads the one target flag and the passive id.
func (o *sendOptions) target() (openapi.Target, error) {
	var t openapi.Target
	n := 0
	for _, c := range []struct {
		id   string
		kind openapi.Kind
	}{{o.user, openapi.KindC2C}, {o.group, openapi.KindGroup}, {o.channel, openapi.KindChannel}, {o.dm, openapi.KindDM}} {
		if c.id != "" {
			t.Kind, t.ID = c.kind, c.id
			n++
		}
	}
	if n != 1 {
		return t, errors.New("give exactly one of --user, --group, --channel, --dm")
	}
	if o.replyTo != "" && o.eventID != "" {
		return t, errors.New("--reply-to and --event-id do not mix: give one")
	}
	t.MsgID, t.EventID = o.replyTo, o.eventID
	return t, nil
}

// credentials resolves the app id, secret and endpoints: from the account
// of --config, or from the flags and environment as run reads them.
func (o *sendOptions) credentials(fs *flag.FlagSet, e *env) (appID, secret, apiBase, tokenURL, account string, err error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.config == "" {
		if set["account"] {
			return "", "", "", "", "", errors.New("--account picks an account of --config; without a config, give --app-id and the secret")
		}
		appID = strings.TrimSpace(o.appID)
		if appID == "" {
			return "", "", "", "", "", errors.New("no app id: set --app-id or QQBOT_APP_ID (or use --config)")
		}
		secret = o.secret
		if o.secretFile != "" {
			if secret, err = runner.ReadSecretFile(o.secretFile); err != nil {
				return "", "", "", "", "", fmt.Errorf("read secret file: %w", err)
			}
		}
		if secret == "" {
			return "", "", "", "", "", errors.New("no client secret: set --secret-file, --secret or QQBOT_CLIENT_SECRET")
		}
		return appID, secret, o.apiBase, o.tokenURL, appID, nil
	}
	for _, name := range []string{"app-id", "secret", "secret-file", "api-base", "token-url"} {
		if set[name] {
			return "", "", "", "", "", fmt.Errorf("--%s and --config do not mix: the account's settings come from the file", name)
		}
	}
	cfg, err := runner.LoadConfig(o.config, e.getenv)
	if err != nil {
		return "", "", "", "", "", err
	}
	var a *runner.Account
	var ids []string
	for i := range cfg.Accounts {
		ids = append(ids, cfg.Accounts[i].ID)
		if cfg.Accounts[i].ID == o.account {
			a = &cfg.Accounts[i]
		}
	}
	switch {
	case o.account == "" && len(cfg.Accounts) == 1:
		a = &cfg.Accounts[0]
	case o.account == "":
		return "", "", "", "", "", fmt.Errorf("%s has %d accounts: pick one with --account (%s)", o.config, len(ids), strings.Join(ids, ", "))
	case a == nil:
		return "", "", "", "", "", fmt.Errorf("%s has no account %q (it has %s)", o.config, o.account, strings.Join(ids, ", "))
	}
	return a.AppID, a.Secret, a.APIBase, a.TokenURL, a.ID, nil
}

// describeSendError is the one line of a failed send: the platform's HTTP
// status, code, message and trace id when it answered, and the msg_seq of
// a passive QQ user or group message (seq, 0 for others), which a second
// try may re-use safely.
func describeSendError(err error, seq int) string {
	var ae *openapi.APIError
	if !errors.As(err, &ae) {
		return err.Error()
	}
	s := fmt.Sprintf("the platform refused the message: HTTP %d, code %d, message %q, trace id %s (%s)",
		ae.Status, ae.EffectiveCode(), ae.Message, orNone(ae.TraceID), ae.Class())
	if seq != 0 {
		s += fmt.Sprintf("; msg_seq %d (send again with --seq %d: it cannot be delivered twice)", seq, seq)
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
