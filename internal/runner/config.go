package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/qqgate/qqgate/intents"
	"github.com/qqgate/qqgate/internal/cluster"
	"github.com/qqgate/qqgate/internal/handler"
	"github.com/qqgate/qqgate/sessionstore"
)

// Config is a parsed, validated runner configuration file.
type Config struct {
	Path       string
	SessionDir string // "" means the default: see SessionDir
	Listen     string // "" means no health/metrics server
	SendAPI    SendAPI
	Webhook    WebhookListener // the webhook block: see config_webhook.go
	Accounts   []Account
	// Cluster is the cluster block; nil without one (the accounts then
	// run here, their records in SessionDir).
	Cluster *cluster.Config
}

// SendAPI is the top-level send_api block: the local send API on the ops
// server (POST /v1/accounts/{account}/messages).
type SendAPI struct {
	// TokenFile is where the bearer token was read from ("" when the file
	// names none; the runner then falls back to QQGATE_SEND_TOKEN).
	TokenFile string
	// Token is the token read from TokenFile; never printed.
	Token string
	// AllowRemote serves the API when the listen address is not loopback.
	AllowRemote bool
}

// Account is one bot account of the file, with the defaults applied and
// the secret resolved.
type Account struct {
	ID           string
	AppID        string
	Secret       string // resolved; never printed
	SecretFrom   string // where it came from, for messages: "secret", "env NAME", "file PATH"
	APIBase      string
	TokenURL     string
	Intents      intents.Set
	IntentLevels []intents.Level
	Shard        [2]int
	Handler      handler.Spec
	// Transport is "" (the WebSocket gateway, the default; the file's
	// "websocket") or TransportWebhook (pushes to the webhook listener).
	Transport string
	Line      int // where the account starts in the file
}

// Same reports whether two accounts would run identically, so a reload
// leaves the account's connection untouched.
func (a Account) Same(b Account) bool {
	a.Line, b.Line = 0, 0
	return reflect.DeepEqual(a, b)
}

// ConfigError is a problem in the file, with the line and key it is at.
type ConfigError struct {
	Path string
	Line int
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Env reads environment variables (secret_env); os.Getenv in production.
// A nil Env means os.Getenv.
type Env func(string) string

// LoadConfig reads and validates the file at path. It must be a regular
// file (a FIFO or a device would block the read or never end) of at most
// 4 MiB.
func LoadConfig(path string, getenv Env) (*Config, error) {
	cfg, _, err := loadConfigKeyed(path, getenv)
	return cfg, err
}

// maxConfigBytes bounds a config file.
const maxConfigBytes = 4 << 20

// ParseConfig parses and validates data as the file path. Unknown keys and
// bad values are errors naming the file, line and key.
func ParseConfig(path string, data []byte, getenv Env) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, &ConfigError{Path: path, Msg: fmt.Sprintf("file is larger than %d bytes", maxConfigBytes)}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	p := &parser{path: path, getenv: getenv}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ConfigError{Path: path, Msg: "file is empty"}
		}
		return nil, &ConfigError{Path: path, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &ConfigError{Path: path, Line: extra.Line, Msg: "more than one YAML document"}
	}
	if len(doc.Content) == 0 {
		return nil, &ConfigError{Path: path, Msg: "file is empty"}
	}
	if err := p.noAliases(&doc); err != nil {
		return nil, err
	}
	return p.top(doc.Content[0])
}

// noAliases refuses YAML anchors (&name) and aliases (*name, merge keys
// included) anywhere in the document. An alias repeats a whole subtree
// without repeating its text, so a small file could make the parser walk
// the square of its size (a list of a thousand aliases to a list of a
// thousand items); a config has defaults: for what accounts share. The walk
// never follows an alias, so it is linear in the file.
func (p *parser) noAliases(n *yaml.Node) error {
	stack := []*yaml.Node{n}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch {
		case n.Kind == yaml.AliasNode:
			return p.errAt(n, "", "alias *%s: YAML anchors and aliases are not accepted; write the value out (defaults: holds what accounts share)", n.Value)
		case n.Anchor != "":
			return p.errAt(n, "", "anchor &%s: YAML anchors and aliases are not accepted; write the value out (defaults: holds what accounts share)", n.Anchor)
		}
		for i := len(n.Content) - 1; i >= 0; i-- {
			stack = append(stack, n.Content[i])
		}
	}
	return nil
}

type parser struct {
	path   string
	getenv Env
}

func (p *parser) errAt(n *yaml.Node, key, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &ConfigError{Path: p.path, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// fields checks that n is a mapping with only the allowed keys (each at
// most once) and returns the value nodes by key.
func (p *parser) fields(n *yaml.Node, where string, allowed ...string) (map[string]*yaml.Node, error) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return nil, p.errAt(n, where, "must be a mapping")
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		key := k.Value
		full := key
		if where != "" {
			full = where + "." + key
		}
		if !contains(allowed, key) {
			return nil, p.errAt(k, full, "unknown key (known: %s)", strings.Join(allowed, ", "))
		}
		if _, dup := out[key]; dup {
			return nil, p.errAt(k, full, "given twice")
		}
		out[key] = v
	}
	return out, nil
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var accountKeys = []string{"id", "app_id", "secret", "secret_env", "secret_file", "api_base", "token_url",
	"intents", "intent_levels", "shard", "handler", "transport"}

func (p *parser) top(root *yaml.Node) (*Config, error) {
	f, err := p.fields(root, "", "session_dir", "listen", "send_api", "webhook", "cluster", "defaults", "accounts")
	if err != nil {
		return nil, err
	}
	cfg := &Config{Path: p.path}
	if n := f["session_dir"]; n != nil {
		if cfg.SessionDir, err = p.str(n, "session_dir"); err != nil {
			return nil, err
		}
	}
	if n := f["listen"]; n != nil {
		if cfg.Listen, err = p.str(n, "listen"); err != nil {
			return nil, err
		}
	}
	if n := f["send_api"]; n != nil {
		if cfg.SendAPI, err = p.sendAPI(n); err != nil {
			return nil, err
		}
	}
	if n := f["webhook"]; n != nil {
		if cfg.Webhook, err = p.webhook(n); err != nil {
			return nil, err
		}
	}
	if n := f["cluster"]; n != nil {
		if cfg.Cluster, err = p.cluster(n); err != nil {
			return nil, err
		}
	}
	defaults := map[string]*yaml.Node{}
	if n := f["defaults"]; n != nil {
		if defaults, err = p.fields(n, "defaults", accountKeys...); err != nil {
			return nil, err
		}
		for _, k := range []string{"id", "app_id"} {
			if v := defaults[k]; v != nil {
				return nil, p.errAt(v, "defaults."+k, "is per account; it cannot be a default")
			}
		}
	}
	accs := resolve(f["accounts"])
	if accs == nil || accs.Kind != yaml.SequenceNode || len(accs.Content) == 0 {
		return nil, p.errAt(orNode(accs, root), "accounts", "must list at least one account")
	}
	ids := map[string]int{}
	files := map[string]string{}
	for i, an := range accs.Content {
		where := fmt.Sprintf("accounts[%d]", i)
		af, err := p.fields(an, where, accountKeys...)
		if err != nil {
			return nil, err
		}
		merged := map[string]*yaml.Node{}
		for k, v := range defaults {
			merged[k] = v
		}
		for k, v := range af {
			merged[k] = v
		}
		a, err := p.account(resolve(an), where, merged, defaults)
		if err != nil {
			return nil, err
		}
		if line, dup := ids[a.ID]; dup {
			return nil, p.errAt(af["id"], where+".id", "account %q is already defined at line %d", a.ID, line)
		}
		if other, clash := files[sessionstore.SafeID(a.ID)]; clash {
			return nil, p.errAt(af["id"], where+".id", "account %q shares its session file %s with account %q", a.ID, sessionstore.FileName(a.ID), other)
		}
		ids[a.ID] = a.Line
		files[sessionstore.SafeID(a.ID)] = a.ID
		cfg.Accounts = append(cfg.Accounts, a)
	}
	if err := p.webhookApps(cfg, accs); err != nil {
		return nil, err
	}
	return cfg, nil
}

func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

func hasLevel(levels []intents.Level, set intents.Set) bool {
	for _, l := range levels {
		if l.Intents == set {
			return true
		}
	}
	return false
}

func (p *parser) account(an *yaml.Node, where string, f, defaults map[string]*yaml.Node) (Account, error) {
	a := Account{Line: an.Line, Shard: [2]int{0, 1}}
	key := func(k string) string {
		if f[k] != nil && f[k] == defaults[k] {
			return "defaults." + k
		}
		return where + "." + k
	}
	var err error
	if f["id"] == nil {
		return a, p.errAt(an, where+".id", "is required")
	}
	if a.ID, err = p.str(f["id"], key("id")); err != nil {
		return a, err
	}
	if a.ID == "" {
		return a, p.errAt(f["id"], key("id"), "must not be empty")
	}
	if strings.ContainsFunc(a.ID, unicode.IsControl) {
		// It names the account in logs, records, headers and tables.
		return a, p.errAt(f["id"], key("id"), "%q holds a control character", a.ID)
	}
	if f["app_id"] == nil {
		return a, p.errAt(an, where+".app_id", "is required")
	}
	if a.AppID, err = p.str(f["app_id"], key("app_id")); err != nil {
		return a, err
	}
	if a.AppID == "" {
		return a, p.errAt(f["app_id"], key("app_id"), "must not be empty")
	}

	// Exactly one secret source.
	var srcs []string
	for _, k := range []string{"secret", "secret_env", "secret_file"} {
		if f[k] != nil {
			srcs = append(srcs, k)
		}
	}
	if len(srcs) != 1 {
		return a, p.errAt(an, where, "needs exactly one of secret, secret_env, secret_file (has %d)", len(srcs))
	}
	k := srcs[0]
	v, err := p.str(f[k], key(k))
	if err != nil {
		return a, err
	}
	switch k {
	case "secret":
		a.Secret, a.SecretFrom = v, "secret"
	case "secret_env":
		a.Secret, a.SecretFrom = p.getenv(v), "env "+v
		if a.Secret == "" {
			return a, p.errAt(f[k], key(k), "environment variable %s is empty or unset", v)
		}
	case "secret_file":
		secret, err := ReadSecretFile(v)
		if err != nil {
			return a, p.errAt(f[k], key(k), "cannot read the secret file: %v", err)
		}
		a.Secret, a.SecretFrom = secret, "file "+v
	}
	if a.Secret == "" {
		return a, p.errAt(f[k], key(k), "the secret is empty")
	}

	for _, kk := range []string{"api_base", "token_url"} {
		if f[kk] == nil {
			continue
		}
		s, err := p.str(f[kk], key(kk))
		if err != nil {
			return a, err
		}
		if kk == "api_base" {
			a.APIBase = s
		} else {
			a.TokenURL = s
		}
	}
	// intent_levels replaces intents. One given in the account replaces the
	// other given in defaults. Given together at one place (shop-bot in
	// deploy/config.example.yaml), intents must be one of the levels (the reduced set
	// the bot needs at least, say): anything else is ambiguous.
	var together *yaml.Node
	if f["intents"] != nil && f["intent_levels"] != nil {
		intentsDefault := f["intents"] == defaults["intents"]
		levelsDefault := f["intent_levels"] == defaults["intent_levels"]
		switch {
		case intentsDefault == levelsDefault:
			together = f["intents"]
		case levelsDefault:
			delete(f, "intent_levels")
		default:
			delete(f, "intents")
		}
	}
	if n := f["intents"]; n != nil {
		if a.Intents, err = p.intentSet(n, key("intents")); err != nil {
			return a, err
		}
	}
	if n := f["intent_levels"]; n != nil {
		given := a.Intents
		if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
			return a, p.errAt(n, key("intent_levels"), "must be a list of intent lists, full first")
		}
		for i, ln := range n.Content {
			set, err := p.intentSet(resolve(ln), fmt.Sprintf("%s[%d]", key("intent_levels"), i))
			if err != nil {
				return a, err
			}
			a.IntentLevels = append(a.IntentLevels, intents.Level{Name: fmt.Sprintf("level %d", i), Intents: set})
		}
		if together != nil && !hasLevel(a.IntentLevels, given) {
			return a, p.errAt(n, key("intent_levels"), "replaces intents, and intents %s is none of its levels; give one of them", given)
		}
		a.Intents = 0
	}
	if n := f["shard"]; n != nil {
		if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
			return a, p.errAt(n, key("shard"), "must be [shard id, shard count]")
		}
		for i := range 2 {
			v, err := p.integer(resolve(n.Content[i]), key("shard"))
			if err != nil {
				return a, err
			}
			a.Shard[i] = v
		}
		if a.Shard[1] < 1 || a.Shard[0] < 0 || a.Shard[0] >= a.Shard[1] {
			return a, p.errAt(n, key("shard"), "[%d, %d] is not [id, count] with 0 <= id < count", a.Shard[0], a.Shard[1])
		}
	}
	if n := f["handler"]; n != nil {
		if a.Handler, err = p.handler(n, key("handler")); err != nil {
			return a, err
		}
	}
	if a.Transport, err = p.transport(f["transport"], key("transport")); err != nil {
		return a, err
	}
	return a, nil
}

// sendAPI reads the send_api block.
func (p *parser) sendAPI(n *yaml.Node) (SendAPI, error) {
	var s SendAPI
	f, err := p.fields(n, "send_api", "token_file", "allow_remote")
	if err != nil {
		return s, err
	}
	if v := f["token_file"]; v != nil {
		if s.TokenFile, err = p.str(v, "send_api.token_file"); err != nil {
			return s, err
		}
		if s.Token, err = ReadSecretFile(s.TokenFile); err != nil {
			return s, p.errAt(v, "send_api.token_file", "cannot read the token file: %v", err)
		}
		if s.Token == "" {
			return s, p.errAt(v, "send_api.token_file", "the token file is empty")
		}
	}
	if v := f["allow_remote"]; v != nil {
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			return s, p.errAt(v, "send_api.allow_remote", "must be true or false, not %q", v.Value)
		}
		s.AllowRemote = v.Value == "true" || v.Value == "True" || v.Value == "TRUE"
	}
	return s, nil
}

// cluster reads the cluster block: name, and etcd's endpoints, prefix,
// lease_ttl, username, password_file and tls files.
func (p *parser) cluster(n *yaml.Node) (*cluster.Config, error) {
	c := &cluster.Config{}
	f, err := p.fields(n, "cluster", "name", "etcd")
	if err != nil {
		return nil, err
	}
	if v := f["name"]; v != nil {
		if c.Name, err = p.str(v, "cluster.name"); err != nil {
			return nil, err
		}
	}
	en := f["etcd"]
	if en == nil {
		return nil, p.errAt(n, "cluster.etcd", "is required (endpoints of the etcd cluster)")
	}
	e, err := p.fields(en, "cluster.etcd", "endpoints", "prefix", "lease_ttl", "username", "password_file", "tls")
	if err != nil {
		return nil, err
	}
	if v := e["endpoints"]; v != nil {
		if v.Kind != yaml.SequenceNode {
			return nil, p.errAt(v, "cluster.etcd.endpoints", "must be a list of URLs")
		}
		for _, x := range v.Content {
			s, err := p.str(x, "cluster.etcd.endpoints")
			if err != nil {
				return nil, err
			}
			c.Endpoints = append(c.Endpoints, s)
		}
	}
	if v := e["prefix"]; v != nil {
		if c.Prefix, err = p.str(v, "cluster.etcd.prefix"); err != nil {
			return nil, err
		}
	}
	if v := e["lease_ttl"]; v != nil {
		d, perr := time.ParseDuration(v.Value)
		if v.Tag == "!!int" {
			var secs int
			secs, perr = strconv.Atoi(v.Value)
			d = time.Duration(secs) * time.Second
		}
		if v.Kind != yaml.ScalarNode || perr != nil || d <= 0 {
			return nil, p.errAt(v, "cluster.etcd.lease_ttl", "must be a duration such as 5s, not %q", v.Value)
		}
		c.LeaseTTL = d
	}
	if v := e["username"]; v != nil {
		if c.Username, err = p.str(v, "cluster.etcd.username"); err != nil {
			return nil, err
		}
	}
	if v := e["password_file"]; v != nil {
		if c.PasswordFile, err = p.str(v, "cluster.etcd.password_file"); err != nil {
			return nil, err
		}
		if c.Password, err = ReadSecretFile(c.PasswordFile); err != nil {
			return nil, p.errAt(v, "cluster.etcd.password_file", "cannot read the password file: %v", err)
		}
	}
	if v := e["tls"]; v != nil {
		t, err := p.fields(v, "cluster.etcd.tls", "ca_file", "cert_file", "key_file")
		if err != nil {
			return nil, err
		}
		for key, dst := range map[string]*string{"ca_file": &c.CAFile, "cert_file": &c.CertFile, "key_file": &c.KeyFile} {
			if x := t[key]; x != nil {
				if *dst, err = p.str(x, "cluster.etcd.tls."+key); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, p.errAt(n, "cluster", "%v", err)
	}
	return c, nil
}

func (p *parser) handler(n *yaml.Node, where string) (handler.Spec, error) {
	var s handler.Spec
	f, err := p.fields(n, where, "type", "command", "url", "timeout", "concurrency", "retries", "headers", "reply")
	if err != nil {
		return s, err
	}
	if v := f["type"]; v != nil {
		if s.Type, err = p.str(v, where+".type"); err != nil {
			return s, err
		}
	}
	if v := f["command"]; v != nil {
		if v.Kind != yaml.SequenceNode {
			return s, p.errAt(v, where+".command", "must be a list: [program, arg, ...]")
		}
		for _, c := range v.Content {
			arg, err := p.str(resolve(c), where+".command")
			if err != nil {
				return s, err
			}
			s.Command = append(s.Command, arg)
		}
	}
	if v := f["url"]; v != nil {
		if s.URL, err = p.str(v, where+".url"); err != nil {
			return s, err
		}
	}
	if v := f["timeout"]; v != nil {
		str, err := p.str(v, where+".timeout")
		if err != nil {
			return s, err
		}
		if s.Timeout, err = time.ParseDuration(str); err != nil || s.Timeout <= 0 {
			return s, p.errAt(v, where+".timeout", "%q is not a positive duration such as 10s", str)
		}
	}
	if v := f["concurrency"]; v != nil {
		if s.Concurrency, err = p.integer(v, where+".concurrency"); err != nil {
			return s, err
		}
		if s.Concurrency < 1 {
			return s, p.errAt(v, where+".concurrency", "must be at least 1")
		}
	}
	if v := f["retries"]; v != nil {
		if s.Retries, err = p.integer(v, where+".retries"); err != nil {
			return s, err
		}
		if s.Retries == 0 {
			s.Retries = -1 // an explicit 0: no retries
		}
	}
	if v := f["reply"]; v != nil {
		if s.Reply, err = p.str(v, where+".reply"); err != nil {
			return s, err
		}
		if s.Reply == "" {
			return s, p.errAt(v, where+".reply", "must be text, json or off")
		}
	}
	if v := f["headers"]; v != nil {
		if v.Kind != yaml.MappingNode {
			return s, p.errAt(v, where+".headers", "must be a mapping of header to value")
		}
		s.Headers = map[string]string{}
		for i := 0; i+1 < len(v.Content); i += 2 {
			val, err := p.str(resolve(v.Content[i+1]), where+".headers."+v.Content[i].Value)
			if err != nil {
				return s, err
			}
			s.Headers[v.Content[i].Value] = val
		}
	}
	if err := s.Validate(); err != nil {
		return s, p.errAt(n, where, "%v", err)
	}
	return s, nil
}

func (p *parser) str(n *yaml.Node, key string) (string, error) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.errAt(n, key, "must be a string")
	}
	return n.Value, nil
}

func (p *parser) integer(n *yaml.Node, key string) (int, error) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, p.errAt(n, key, "must be an integer, not %q", n.Value)
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return 0, p.errAt(n, key, "must be an integer, not %q", n.Value)
	}
	return v, nil
}

// intentSet reads a list of intent names, a number, or a string of names.
func (p *parser) intentSet(n *yaml.Node, key string) (intents.Set, error) {
	n = resolve(n)
	var text string
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		for _, c := range n.Content {
			s, err := p.str(c, key)
			if err != nil {
				return 0, err
			}
			names = append(names, s)
		}
		text = strings.Join(names, ",")
	case yaml.ScalarNode:
		text = n.Value
	default:
		return 0, p.errAt(n, key, "must be a list of intent names or a number")
	}
	set, err := intents.Parse(text)
	if err != nil {
		return 0, p.errAt(n, key, "%v", err)
	}
	if set == 0 {
		return 0, p.errAt(n, key, "names no intent")
	}
	return set, nil
}

// IsConfigError reports whether err is a problem in the file (as opposed
// to reading it).
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}
