package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// demoWebhook is `qqgate demo --webhook`: the same echo bot on the webhook
// transport. The runner is a real subprocess of this one (`qqgate run`
// with a config file); this process plays the platform: it validates the
// callback URL, pushes signed messages, delivers one twice, and kills the
// runner with SIGKILL after it acknowledged a push whose handler had not
// finished. The restarted runner handles that push from its inbox; the
// user sees each answer once.
func demoWebhook(ctx context.Context, e *env, say func(string, ...any)) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to run the runner: %w", err)
	}
	srv := gatewaytest.NewServer(gatewaytest.Options{})
	defer srv.Close()
	dir, err := os.MkdirTemp("", "qqgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	echo, err := startHoldingEcho("are you still there?")
	if err != nil {
		return err
	}
	defer echo.stop()

	cfgPath := filepath.Join(dir, "qqgate.yaml")
	writeCfg := func(listen string) error {
		return os.WriteFile(cfgPath, []byte(fmt.Sprintf(`session_dir: %s
webhook: {listen: %q}
accounts:
  - id: demo
    app_id: %q
    secret: %s
    api_base: %s
    token_url: %s
    transport: webhook
    handler: {type: http, url: %s, reply: text}
`, filepath.Join(dir, "sessions"), listen, gatewaytest.DefaultAppID, gatewaytest.DefaultSecret, srv.URL(), srv.TokenURL(), echo.url)), 0o600)
	}
	if err := writeCfg("127.0.0.1:0"); err != nil {
		return err
	}
	child, err := startRunner(ctx, exe, cfgPath)
	if err != nil {
		return err
	}
	defer child.kill()
	say("the runner is a real subprocess (pid %d): qqgate run --config %s; this process plays the platform and an http echo handler with reply: text", child.cmd.Process.Pid, cfgPath)
	url := "http://" + child.addr + "/"
	plat, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: url, AppID: gatewaytest.DefaultAppID, Secret: gatewaytest.DefaultSecret})
	if err != nil {
		return err
	}
	defer plat.Close()
	if err := plat.Validate(ctx, true); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "the platform validated the callback URL %s (op 13: the bot's signature checks out)\n", url)

	alice := "C0000000000000000000000000A11CE"
	n := 0
	push := func(text string, deliveries int) (gatewaytest.SendTarget, gatewaytest.PushResult, error) {
		n++
		in, err := srv.NewInboundWith(wire.EventC2CMessageCreate, "", wire.Message{
			ID: fmt.Sprintf("ROBOT1.0_demo.%d", n), Content: text, Timestamp: time.Now().Format(time.RFC3339),
			Author: wire.Author{ID: alice, UserOpenID: alice}, MessageScene: &wire.MessageScene{Source: "default"},
		})
		if err != nil {
			return gatewaytest.SendTarget{}, gatewaytest.PushResult{}, err
		}
		res := plat.Push(ctx, in.Type, in.Data, gatewaytest.PushFault{ID: in.ID, Deliveries: deliveries})
		if !res.Acked {
			return gatewaytest.SendTarget{}, res, fmt.Errorf("push %s not acknowledged: %+v", in.ID, res.Attempts)
		}
		return gatewaytest.SendTarget{Scene: gatewaytest.SceneC2C, ID: alice}, res, nil
	}
	target := gatewaytest.SendTarget{Scene: gatewaytest.SceneC2C, ID: alice}
	saw := func(want int) error {
		if err := srv.Wait(ctx, func() bool { return len(srv.Delivered(target)) >= want }); err != nil {
			return fmt.Errorf("waiting for the bot's answer: %w", err)
		}
		d := srv.Delivered(target)[want-1]
		fmt.Fprintf(e.stdout, "the user saw: %q (msg_id %s, msg_seq %d)\n", d.Content, d.MsgID, d.MsgSeq)
		return nil
	}

	fmt.Fprintf(e.stdout, "the user wrote: %q\n", "hello, bot")
	if _, _, err := push("hello, bot", 1); err != nil {
		return err
	}
	if err := saw(1); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "the user wrote: %q (the platform delivers it twice, as when its first 200 comes too late)\n", "what is 6 x 7?")
	if _, res, err := push("what is 6 x 7?", 2); err != nil {
		return err
	} else {
		say("push %s sent %d times with the same envelope id; both got 200", res.ID, len(res.Attempts))
	}
	if err := saw(2); err != nil {
		return err
	}

	text := "are you still there?"
	fmt.Fprintf(e.stdout, "the user wrote: %q\n", text)
	_, res, err := push(text, 1)
	if err != nil {
		return err
	}
	select {
	case <-echo.holding:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the handler to take the push: %w", ctx.Err())
	}
	say("push %s acknowledged (HTTP %d) and in the handler, not answered yet: killing the runner with SIGKILL", res.ID, res.Attempts[0].Status)
	child.kill()
	fmt.Fprintf(e.stdout, "the runner acknowledged it (HTTP 200) and was killed (SIGKILL) before answering\n")
	if len(srv.Delivered(target)) != 2 {
		return errors.New("an answer went out before the kill; the demo cannot show the restart")
	}

	// The same URL again, as the platform keeps calling it.
	if err := writeCfg(child.addr); err != nil {
		return err
	}
	child, err = startRunner(ctx, exe, cfgPath)
	if err != nil {
		return err
	}
	defer child.kill()
	say("restarted the runner (pid %d) on %s; its inbox still holds the acknowledged push", child.cmd.Process.Pid, url)
	if err := saw(3); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "the runner restarted and handled the push its inbox kept\n")
	// The platform retries the last push (its 200 was lost with the
	// process, say): acknowledged, not handled again.
	again := plat.Push(ctx, wire.EventC2CMessageCreate, json.RawMessage(`{"content":"(retry)"}`), gatewaytest.PushFault{ID: res.ID})
	if !again.Acked {
		return fmt.Errorf("the retry was not acknowledged: %+v", again.Attempts)
	}
	if err := child.stop(); err != nil {
		return fmt.Errorf("stop the runner: %w", err)
	}
	answers := srv.Delivered(target)
	fmt.Fprintf(e.stdout, "the user saw %d answers to 3 messages (one delivered twice, one retried after the crash): each answered once\n", len(answers))
	if len(answers) != 3 {
		return fmt.Errorf("the user saw %d answers, want 3", len(answers))
	}
	return nil
}

// runnerProc is a `qqgate run` subprocess.
type runnerProc struct {
	cmd    *exec.Cmd
	addr   string // its webhook listener
	done   chan struct{}
	stderr *strings.Builder
	mu     sync.Mutex
}

// startRunner starts `exe run --config cfg` and waits for its webhook
// listener's address in its JSON log.
func startRunner(ctx context.Context, exe, cfg string) (*runnerProc, error) {
	cmd := exec.Command(exe, "run", "--config", cfg, "--log-level", "info", "--log-format", "json")
	cmd.Env = []string{"HOME=" + filepath.Dir(cfg), "PATH=" + os.Getenv("PATH")}
	cmd.Stdout = io.Discard
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the runner: %w", err)
	}
	p := &runnerProc{cmd: cmd, done: make(chan struct{}), stderr: &strings.Builder{}}
	addr := make(chan string, 1)
	ready := make(chan struct{}, 1)
	go func() { // owned: ends with the child's stderr; kill and stop wait for it
		defer close(p.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			var l struct {
				Message string `json:"message"`
				Listen  string `json:"listen"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				switch l.Message {
				case "webhook listener started":
					select {
					case addr <- l.Listen:
					default:
					}
				case "webhook account started":
					select {
					case ready <- struct{}{}:
					default:
					}
				}
			}
			p.mu.Lock()
			p.stderr.Write(sc.Bytes())
			p.stderr.WriteByte('\n')
			p.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	for p.addr == "" || ready != nil {
		select {
		case p.addr = <-addr:
		case <-ready:
			ready = nil
		case <-p.done:
			return nil, fmt.Errorf("the runner exited: %s", p.log())
		case <-ctx.Done():
			p.kill()
			return nil, fmt.Errorf("waiting for the runner's webhook listener: %w; its log: %s", ctx.Err(), p.log())
		}
	}
	return p, nil
}

func (p *runnerProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// kill sends SIGKILL (once it is running) and waits for the exit.
func (p *runnerProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop asks the runner to stop gracefully and waits.
func (p *runnerProc) stop() error {
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		p.kill()
		return nil
	}
	<-p.done
	if !p.cmd.ProcessState.Success() {
		return fmt.Errorf("%s; its log: %s", p.cmd.ProcessState, p.log())
	}
	return nil
}

// holdingEcho is the demo's http handler: it answers a message with "echo: "
// and its text, except that the first time it sees hold it signals holding
// and keeps the request until the caller goes away (the runner is killed).
type holdingEcho struct {
	url     string
	holding chan struct{}
	stop    func()
}

func startHoldingEcho(hold string) (*holdingEcho, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &holdingEcho{holding: make(chan struct{})}
	var once sync.Once
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ev); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		var msg struct {
			Content string `json:"content"`
		}
		if !strings.HasSuffix(ev.Type, "MESSAGE_CREATE") || json.Unmarshal(ev.Data, &msg) != nil || msg.Content == "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		first := false
		if msg.Content == hold {
			once.Do(func() { first = true })
		}
		if first {
			close(h.holding)
			<-r.Context().Done() // the runner died with the request open
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "echo: "+msg.Content)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	h.url = "http://" + ln.Addr().String() + "/events"
	h.stop = func() { _ = hs.Close(); <-done }
	return h, nil
}
