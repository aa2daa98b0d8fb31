package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/intents"
	"github.com/qqgate/qqgate/internal/handler"
)

// fakeEnv is a getenv over a map.
func fakeEnv(m map[string]string) Env {
	return func(k string) string { return m[k] }
}

var testEnv = fakeEnv(map[string]string{"SHOP_BOT_SECRET": "shop-secret", "EMPTY": ""})

func mustIntents(t testing.TB, s string) intents.Set {
	t.Helper()
	set, err := intents.Parse(s)
	require.NoError(t, err)
	return set
}

// TestParseConfigFullExample parses a config that uses every key, and
// checks each value.
func TestParseConfigFullExample(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "support")
	require.NoError(t, os.WriteFile(secretFile, []byte("  support-secret\n"), 0o600))
	src := `session_dir: /var/lib/qqgate/sessions
listen: 127.0.0.1:9464
defaults:
  api_base: https://api.sgroup.qq.com
  token_url: https://bots.qq.com/app/getAppAccessToken
  handler: {type: stdout}
accounts:
  - id: shop-bot
    app_id: "1020304"
    secret_env: SHOP_BOT_SECRET
    intents: [public_guild_messages, group_and_c2c_event]
    intent_levels:
      - [public_guild_messages, direct_message, group_and_c2c_event]
      - [public_guild_messages, group_and_c2c_event]
    shard: [0, 1]
    handler: {type: exec, command: ["./reply.sh", "-v"], timeout: 10s, concurrency: 2, retries: 0}
  - id: support-bot
    app_id: "1020305"
    secret_file: ` + secretFile + `
    intents: [public_guild_messages, group_and_c2c_event]
    shard: [1, 4]
    handler: {type: http, url: "http://127.0.0.1:8080/events", timeout: 5s, retries: 5, headers: {X-Token: abc}}
  - id: plain
    app_id: 42
    secret: inline
    intents: 1073741825
    api_base: https://sandbox.api.sgroup.qq.com
`
	cfg, err := ParseConfig("qqgate.yaml", []byte(src), testEnv)
	require.NoError(t, err)
	assert.Equal(t, "qqgate.yaml", cfg.Path)
	assert.Equal(t, "/var/lib/qqgate/sessions", cfg.SessionDir)
	assert.Equal(t, "127.0.0.1:9464", cfg.Listen)
	require.Len(t, cfg.Accounts, 3)

	shop := cfg.Accounts[0]
	assert.Equal(t, Account{
		ID: "shop-bot", AppID: "1020304", Secret: "shop-secret", SecretFrom: "env SHOP_BOT_SECRET",
		APIBase: "https://api.sgroup.qq.com", TokenURL: "https://bots.qq.com/app/getAppAccessToken",
		IntentLevels: []intents.Level{
			{Name: "level 0", Intents: mustIntents(t, "public_guild_messages,direct_message,group_and_c2c_event")},
			{Name: "level 1", Intents: mustIntents(t, "public_guild_messages,group_and_c2c_event")},
		},
		Shard:   [2]int{0, 1},
		Handler: handler.Spec{Type: "exec", Command: []string{"./reply.sh", "-v"}, Timeout: 10 * time.Second, Concurrency: 2, Retries: -1},
		Line:    8,
	}, shop, "intent_levels replace intents (here one of the levels)")

	sup := cfg.Accounts[1]
	assert.Equal(t, Account{
		ID: "support-bot", AppID: "1020305", Secret: "support-secret", SecretFrom: "file " + secretFile,
		APIBase: "https://api.sgroup.qq.com", TokenURL: "https://bots.qq.com/app/getAppAccessToken",
		Intents: mustIntents(t, "public_guild_messages,group_and_c2c_event"),
		Shard:   [2]int{1, 4},
		Handler: handler.Spec{Type: "http", URL: "http://127.0.0.1:8080/events", Timeout: 5 * time.Second, Retries: 5,
			Headers: map[string]string{"X-Token": "abc"}},
		Line: 17,
	}, sup)

	plain := cfg.Accounts[2]
	assert.Equal(t, "42", plain.AppID, "an unquoted app id is still its text")
	assert.Equal(t, "inline", plain.Secret)
	assert.Equal(t, "secret", plain.SecretFrom)
	assert.Equal(t, intents.Set(1073741825), plain.Intents, "intents as a number")
	assert.Equal(t, "https://sandbox.api.sgroup.qq.com", plain.APIBase, "an account overrides a default")
	assert.Equal(t, "https://bots.qq.com/app/getAppAccessToken", plain.TokenURL, "the default applies")
	assert.Equal(t, handler.Spec{Type: "stdout"}, plain.Handler, "the default handler applies")
	assert.Equal(t, [2]int{0, 1}, plain.Shard, "the default shard")
	assert.Equal(t, 23, plain.Line)
	assert.Equal(t, 8, shop.Line)
}

// TestParseConfigDefaults: every account key may be a default, and an
// account's own value replaces it.
func TestParseConfigDefaults(t *testing.T) {
	src := `defaults:
  secret: shared
  intents: [public_guild_messages]
  shard: [0, 2]
  handler: {type: exec, command: [cat]}
accounts:
  - id: a
    app_id: "1"
  - id: b
    app_id: "2"
    secret_env: SHOP_BOT_SECRET
    shard: [1, 2]
    handler: {type: stdout}
    intent_levels:
      - [direct_message]
`
	// secret_env in b together with the default secret is two sources:
	// a default source is replaced only by the same key. Use the same
	// key instead.
	_, err := ParseConfig("c.yaml", []byte(src), testEnv)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce, "a default secret and an account's secret_env are two sources")

	src = strings.Replace(src, "secret_env: SHOP_BOT_SECRET", "secret: own", 1)
	cfg, err := ParseConfig("c.yaml", []byte(src), testEnv)
	require.NoError(t, err)
	a, b := cfg.Accounts[0], cfg.Accounts[1]
	assert.Equal(t, "shared", a.Secret)
	assert.Equal(t, mustIntents(t, "public_guild_messages"), a.Intents)
	assert.Equal(t, [2]int{0, 2}, a.Shard)
	assert.Equal(t, handler.Spec{Type: "exec", Command: []string{"cat"}}, a.Handler)
	assert.Equal(t, "own", b.Secret)
	assert.Equal(t, [2]int{1, 2}, b.Shard)
	assert.Equal(t, handler.Spec{Type: "stdout"}, b.Handler)
	assert.Zero(t, b.Intents, "the account's intent_levels replace the default intents")
	assert.Equal(t, []intents.Level{{Name: "level 0", Intents: mustIntents(t, "direct_message")}}, b.IntentLevels)

	// And the other way round: an account's intents replace default levels.
	src = `defaults:
  intent_levels: [[direct_message], [public_guild_messages]]
accounts:
  - {id: a, app_id: "1", secret: s}
  - {id: b, app_id: "2", secret: s, intents: [group_and_c2c_event]}
`
	cfg, err = ParseConfig("c.yaml", []byte(src), testEnv)
	require.NoError(t, err)
	assert.Len(t, cfg.Accounts[0].IntentLevels, 2)
	assert.Zero(t, cfg.Accounts[0].Intents)
	assert.Nil(t, cfg.Accounts[1].IntentLevels)
	assert.Equal(t, mustIntents(t, "group_and_c2c_event"), cfg.Accounts[1].Intents)
}

// exampleConfig returns deploy/config.example.yaml with its secret_file
// paths moved into dir (where they are created), and a getenv for its
// secret_env variables. The example itself is not changed.
func exampleConfig(t testing.TB) ([]byte, Env) {
	t.Helper()
	data, err := os.ReadFile("../../deploy/config.example.yaml")
	require.NoError(t, err)
	dir := t.TempDir()
	text := string(data)
	for _, line := range strings.Split(text, "\n") {
		for _, key := range []string{"secret_file:", "token_file:"} {
			_, path, ok := strings.Cut(line, key)
			if !ok {
				continue
			}
			path = strings.TrimSpace(strings.SplitN(path, "#", 2)[0])
			if path == "" || !strings.HasPrefix(path, "/") {
				continue
			}
			local := filepath.Join(dir, filepath.Base(path))
			require.NoError(t, os.WriteFile(local, []byte("file-secret\n"), 0o600))
			text = strings.Replace(text, key+" "+path, key+" "+local, 1)
		}
	}
	env := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if _, name, ok := strings.Cut(line, "secret_env:"); ok {
			name = strings.TrimSpace(strings.SplitN(name, "#", 2)[0])
			env[name] = "env-secret-" + name
		}
	}
	return []byte(text), fakeEnv(env)
}

func TestParseConfigExample(t *testing.T) {
	data, env := exampleConfig(t)
	cfg, err := ParseConfig("config.example.yaml", data, env)
	require.NoError(t, err)
	require.NotEmpty(t, cfg.Accounts)
	ids := map[string]bool{}
	for _, a := range cfg.Accounts {
		ids[a.ID] = true
		assert.NotEmpty(t, a.Secret, a.ID)
		assert.NotEmpty(t, a.AppID, a.ID)
		assert.NoError(t, a.Handler.Validate(), a.ID)
	}
	assert.True(t, ids["shop-bot"] && ids["support-bot"], "the example's two accounts: %v", ids)
	assert.NotEmpty(t, cfg.Listen)
	assert.NotEmpty(t, cfg.SessionDir)
	assert.NotEmpty(t, cfg.SendAPI.Token)
}

// badCase is an input ParseConfig must refuse with a *ConfigError at line
// and key.
type badCase struct {
	name string
	src  string
	line int    // 0: no line
	key  string // "": no key
	msg  string // a fragment of the message
}

const okAccount = `accounts:
  - id: a
    app_id: "1"
    secret: s
`

func badCases() []badCase {
	return []badCase{
		{"unknown top-level key", "listen: x\nlisten_addr: y\n" + okAccount, 2, "listen_addr", "unknown key"},
		{"unknown account key", okAccount + "    colour: red\n", 5, "accounts[0].colour", "unknown key"},
		{"unknown handler key", okAccount + "    handler:\n      type: exec\n      command: [cat]\n      cwd: /tmp\n", 8, "accounts[0].handler.cwd", "unknown key"},
		{"unknown defaults key", "defaults:\n  secrets: x\n" + okAccount, 2, "defaults.secrets", "unknown key"},
		{"key twice", okAccount + "    secret: t\n", 5, "accounts[0].secret", "given twice"},
		{"duplicate id", okAccount + "  - id: a\n    app_id: \"2\"\n    secret: s\n", 5, "accounts[1].id", "already defined at line 2"},
		{"ids sharing a session file", "accounts:\n  - {id: a.b, app_id: \"1\", secret: s}\n  - {id: a_b, app_id: \"2\", secret: s}\n", 3, "accounts[1].id", "shares its session file"},
		{"missing app_id", "accounts:\n  - id: a\n    secret: s\n", 2, "accounts[0].app_id", "is required"},
		{"missing id", "accounts:\n  - app_id: \"1\"\n    secret: s\n", 2, "accounts[0].id", "is required"},
		{"empty id", "accounts:\n  - id: \"\"\n    app_id: \"1\"\n    secret: s\n", 2, "accounts[0].id", "must not be empty"},
		{"two secret sources", okAccount + "    secret_env: SHOP_BOT_SECRET\n", 2, "accounts[0]", "exactly one of secret"},
		{"no secret source", "accounts:\n  - id: a\n    app_id: \"1\"\n", 2, "accounts[0]", "has 0"},
		{"empty secret_env", "accounts:\n  - id: a\n    app_id: \"1\"\n    secret_env: EMPTY\n", 4, "accounts[0].secret_env", "EMPTY is empty or unset"},
		{"unset secret_env", "accounts:\n  - id: a\n    app_id: \"1\"\n    secret_env: NOPE\n", 4, "accounts[0].secret_env", "NOPE"},
		{"missing secret_file", "accounts:\n  - id: a\n    app_id: \"1\"\n    secret_file: /nonexistent/qqgate-secret\n", 4, "accounts[0].secret_file", "cannot read"},
		{"empty secret", "accounts:\n  - id: a\n    app_id: \"1\"\n    secret: \"\"\n", 4, "accounts[0].secret", "empty"},
		{"bad intents name", okAccount + "    intents: [public_guild_messages, telepathy]\n", 5, "accounts[0].intents", "telepathy"},
		{"empty intents", okAccount + "    intents: []\n", 5, "accounts[0].intents", ""},
		{"intents mapping", okAccount + "    intents: {a: b}\n", 5, "accounts[0].intents", "list of intent names or a number"},
		{"bad intent level", okAccount + "    intent_levels:\n      - [direct_message]\n      - [nope]\n", 7, "accounts[0].intent_levels[1]", "nope"},
		{"intent_levels not a list", okAccount + "    intent_levels: direct_message\n", 5, "accounts[0].intent_levels", "list of intent lists"},
		{"intent_levels with other intents", okAccount + "    intents: [direct_message]\n    intent_levels: [[public_guild_messages]]\n", 6, "accounts[0].intent_levels", "none of its levels"},
		{"intent_levels with other intents in defaults", "defaults:\n  intents: [direct_message]\n  intent_levels: [[public_guild_messages]]\n" + okAccount, 3, "defaults.intent_levels", "none of its levels"},
		{"shard [2,2]", okAccount + "    shard: [2, 2]\n", 5, "accounts[0].shard", "0 <= id < count"},
		{"shard of three", okAccount + "    shard: [0, 1, 2]\n", 5, "accounts[0].shard", "[shard id, shard count]"},
		{"shard not integers", okAccount + "    shard: [a, 1]\n", 5, "accounts[0].shard", "integer"},
		{"timeout soon", okAccount + "    handler: {type: exec, command: [cat], timeout: soon}\n", 5, "accounts[0].handler.timeout", `"soon"`},
		{"timeout negative", okAccount + "    handler:\n      type: exec\n      command: [cat]\n      timeout: -1s\n", 8, "accounts[0].handler.timeout", "positive"},
		{"concurrency 0", okAccount + "    handler:\n      type: exec\n      command: [cat]\n      concurrency: 0\n", 8, "accounts[0].handler.concurrency", "at least 1"},
		{"concurrency text", okAccount + "    handler: {type: exec, command: [cat], concurrency: many}\n", 5, "accounts[0].handler.concurrency", "integer"},
		{"handler type carrier-pigeon", okAccount + "    handler:\n      type: carrier-pigeon\n", 6, "accounts[0].handler", "carrier-pigeon"},
		{"exec without command", okAccount + "    handler:\n      type: exec\n", 6, "accounts[0].handler", "command"},
		{"command not a list", okAccount + "    handler: {type: exec, command: ./reply.sh}\n", 5, "accounts[0].handler.command", "must be a list"},
		{"http to a remote host in plain http", okAccount + "    handler:\n      type: http\n      url: http://example.com/events\n", 6, "accounts[0].handler", "loopback"},
		{"default handler bad", "defaults:\n  handler: {type: exec}\n" + okAccount, 2, "defaults.handler", "command"},
		{"not YAML", "accounts: [\n  - {id: a\n", 0, "", "not valid YAML"},
		{"tab indentation", "accounts:\n\t- id: a\n", 0, "", "not valid YAML"},
		{"empty file", "", 0, "", "empty"},
		{"only comments", "# nothing here\n", 0, "", "empty"},
		{"two documents", okAccount + "---\nlisten: x\n", 5, "", "more than one YAML document"},
		{"top level not a mapping", "- a\n- b\n", 1, "", "must be a mapping"},
		{"no accounts", "listen: x\n", 1, "accounts", "at least one account"},
		{"accounts empty", "accounts: []\n", 1, "accounts", "at least one account"},
		{"account not a mapping", "accounts:\n  - shop-bot\n", 2, "accounts[0]", "must be a mapping"},
		{"id in defaults", "defaults:\n  id: x\n" + okAccount, 2, "defaults.id", "per account"},
		{"app_id in defaults", "defaults:\n  app_id: \"7\"\n" + okAccount, 2, "defaults.app_id", "per account"},
		{"listen not a string", "listen: [a]\n" + okAccount, 1, "listen", "must be a string"},
		{"session_dir null", "session_dir:\n" + okAccount, 1, "session_dir", "must be a string"},
		{"id with a control character", "accounts:\n  - id: \"a\\x1b[2Jb\"\n    app_id: \"1\"\n    secret: s\n", 2, "accounts[0].id", `"a\x1b[2Jb" holds a control character`},
		{"id a list", "accounts:\n  - id: [a]\n    app_id: \"1\"\n    secret: s\n", 2, "accounts[0].id", "must be a string"},
		{"headers not a mapping", okAccount + "    handler: {type: http, url: \"http://127.0.0.1:1/\", headers: [a]}\n", 5, "accounts[0].handler.headers", "mapping"},
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range badCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig("/etc/qqgate.yaml", []byte(tc.src), testEnv)
			require.Error(t, err, "parsed: %+v", cfg)
			assert.Nil(t, cfg)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%T %v", err, err)
			assert.True(t, IsConfigError(err))
			assert.Equal(t, "/etc/qqgate.yaml", ce.Path)
			assert.Equal(t, tc.line, ce.Line, "line of: %v", err)
			assert.Equal(t, tc.key, ce.Key, "key of: %v", err)
			msg := err.Error()
			assert.Contains(t, msg, tc.msg)
			want := "/etc/qqgate.yaml"
			if tc.line > 0 {
				want += ":" + itoa(tc.line)
			}
			if tc.key != "" {
				want += ": " + tc.key
			}
			assert.True(t, strings.HasPrefix(msg, want+": "), "%q does not start with %q", msg, want+": ")
			assert.NotContains(t, msg, "shop-secret", "never the secret")
		})
	}
}

func itoa(n int) string {
	return strconv.Itoa(n)
}

func TestLoadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	_, err := LoadConfig(path, testEnv)
	require.Error(t, err)
	assert.False(t, IsConfigError(err), "a missing file is not a problem in the file")

	require.NoError(t, os.WriteFile(path, []byte(okAccount), 0o600))
	cfg, err := LoadConfig(path, testEnv)
	require.NoError(t, err)
	assert.Equal(t, path, cfg.Path)

	require.NoError(t, os.WriteFile(path, []byte(okAccount+"    x: 1\n"), 0o600))
	_, err = LoadConfig(path, testEnv)
	require.True(t, IsConfigError(err))
	assert.Contains(t, err.Error(), path+":5: accounts[0].x: ")
}

func TestParseConfigTooLarge(t *testing.T) {
	data := []byte(okAccount + "#" + strings.Repeat("x", maxConfigBytes))
	_, err := ParseConfig("big.yaml", data, testEnv)
	require.True(t, IsConfigError(err))
	assert.Contains(t, err.Error(), "larger than")
}

func TestParseConfigNilGetenv(t *testing.T) {
	t.Setenv("QQGATE_RUNNER_TEST_SECRET", "from-os")
	cfg, err := ParseConfig("c.yaml", []byte("accounts:\n  - {id: a, app_id: \"1\", secret_env: QQGATE_RUNNER_TEST_SECRET}\n"), nil)
	require.NoError(t, err)
	assert.Equal(t, "from-os", cfg.Accounts[0].Secret)
}

func TestAccountSame(t *testing.T) {
	base := Account{
		ID: "a", AppID: "1", Secret: "s", SecretFrom: "secret", APIBase: "https://x", TokenURL: "https://y",
		Intents: 3, IntentLevels: []intents.Level{{Name: "level 0", Intents: 1}}, Shard: [2]int{0, 1},
		Handler: handler.Spec{Type: "http", URL: "http://127.0.0.1/", Timeout: time.Second, Retries: 2, Headers: map[string]string{"A": "b"}},
		Line:    3,
	}
	clone := func() Account {
		c := base
		c.IntentLevels = append([]intents.Level(nil), base.IntentLevels...)
		c.Handler.Headers = map[string]string{"A": "b"}
		return c
	}
	same := clone()
	same.Line = 40
	assert.True(t, base.Same(same), "equal accounts, the line aside")
	assert.True(t, base.Same(base))

	changes := map[string]func(*Account){
		"id":            func(a *Account) { a.ID = "b" },
		"app_id":        func(a *Account) { a.AppID = "2" },
		"secret":        func(a *Account) { a.Secret = "t" },
		"secret source": func(a *Account) { a.SecretFrom = "env X" },
		"api_base":      func(a *Account) { a.APIBase = "https://z" },
		"token_url":     func(a *Account) { a.TokenURL = "https://z" },
		"intents":       func(a *Account) { a.Intents = 1 },
		"intent_levels": func(a *Account) { a.IntentLevels[0].Intents = 2 },
		"level name":    func(a *Account) { a.IntentLevels[0].Name = "level 9" },
		"more levels":   func(a *Account) { a.IntentLevels = append(a.IntentLevels, intents.Level{Intents: 1}) },
		"shard":         func(a *Account) { a.Shard = [2]int{1, 2} },
		"handler type":  func(a *Account) { a.Handler.Type = "stdout" },
		"handler url":   func(a *Account) { a.Handler.URL = "http://127.0.0.1/x" },
		"timeout":       func(a *Account) { a.Handler.Timeout = 2 * time.Second },
		"retries":       func(a *Account) { a.Handler.Retries = 3 },
		"concurrency":   func(a *Account) { a.Handler.Concurrency = 2 },
		"command":       func(a *Account) { a.Handler.Command = []string{"x"} },
		"header":        func(a *Account) { a.Handler.Headers["A"] = "c" },
	}
	for name, change := range changes {
		c := clone()
		change(&c)
		assert.False(t, base.Same(c), name)
		assert.False(t, c.Same(base), name)
	}
}

// TestParseConfigReparseSame: parsing the same file twice gives Same
// accounts, even moved to other lines (what hot reload relies on).
func TestParseConfigReparseSame(t *testing.T) {
	data, env := exampleConfig(t)
	a, err := ParseConfig("x", data, env)
	require.NoError(t, err)
	b, err := ParseConfig("x", append([]byte("\n\n# moved\n"), data...), env)
	require.NoError(t, err)
	require.Equal(t, len(a.Accounts), len(b.Accounts))
	for i := range a.Accounts {
		assert.NotEqual(t, a.Accounts[i].Line, b.Accounts[i].Line)
		assert.True(t, a.Accounts[i].Same(b.Accounts[i]), a.Accounts[i].ID)
	}
}

func FuzzParseConfig(f *testing.F) {
	data, env := exampleConfig(f)
	f.Add(data)
	f.Add([]byte(okAccount))
	for _, tc := range badCases() {
		f.Add([]byte(tc.src))
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("defaults: &d {secret: s}\naccounts:\n  - <<: *d\n    id: a\n    app_id: \"1\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("fuzz.yaml", data, env)
		if err != nil {
			if !IsConfigError(err) {
				t.Fatalf("not a *ConfigError: %T %v", err, err)
			}
			_ = err.Error()
			return
		}
		if len(cfg.Accounts) == 0 {
			t.Fatal("a config without accounts")
		}
		for _, a := range cfg.Accounts {
			if a.ID == "" || a.AppID == "" || a.Secret == "" {
				t.Fatalf("incomplete account %+v", a)
			}
			if !a.Same(a) {
				t.Fatal("an account not Same as itself")
			}
		}
	})
}

// aliasBomb is a small file whose one alias-heavy key would make a parser
// that expands aliases walk items*aliases values.
func aliasBomb(items, aliases int) []byte {
	var b strings.Builder
	b.WriteString("accounts:\n  - id: a\n    app_id: \"1\"\n    secret: s\n    intent_levels: [&L [")
	for i := range items {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("1")
	}
	b.WriteString("]")
	for range aliases {
		b.WriteString(",*L")
	}
	b.WriteString("]\n")
	return []byte(b.String())
}

// TestParseConfigRefusesAliases: anchors and aliases are refused with the
// file and line, so an alias-amplified file fails at once instead of
// costing the square of its size.
func TestParseConfigRefusesAliases(t *testing.T) {
	_, err := ParseConfig("/etc/bomb.yaml", aliasBomb(25000, 25000), testEnv)
	require.Error(t, err)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 5, ce.Line)
	assert.Contains(t, err.Error(), "/etc/bomb.yaml:5: ")
	assert.Contains(t, err.Error(), "anchor &L")

	cases := []struct {
		name, src string
		line      int
		what      string
	}{
		{"merge key", "defaults: &d {secret: s}\naccounts:\n  - <<: *d\n    id: a\n    app_id: \"1\"\n", 1, "anchor &d"},
		{"alias to an earlier scalar", "accounts:\n  - id: &i a\n    app_id: \"1\"\n    secret: *i\n", 2, "anchor &i"},
		{"anchor never used", "accounts:\n  - id: a\n    app_id: \"1\"\n    secret: &s s\n", 4, "anchor &s"},
		{"self reference", "a: &x [*x]\n", 1, "anchor &x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", []byte(tc.src), testEnv)
			require.Error(t, err)
			require.True(t, IsConfigError(err), "%T %v", err, err)
			assert.Contains(t, err.Error(), "c.yaml:"+itoa(tc.line)+": ")
			assert.Contains(t, err.Error(), tc.what)
			assert.Contains(t, err.Error(), "not accepted")
		})
	}
}
