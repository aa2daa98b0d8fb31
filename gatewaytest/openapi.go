package gatewaytest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// The send side of the OpenAPI: messages, media uploads, recalls,
// interaction ACKs and DM sessions. See the package documentation, section
// "Send API".

// Error codes of the send API (the platform's, except CodeBadRequest).
const (
	CodeBadRequest      = 400                   // the fake's code for a malformed request (bad header, body, field)
	CodeNotFound        = 404                   // the fake's code for an unknown message or route
	CodeDuplicateMsgSeq = wire.CodeDuplicateSeq // "消息被去重，请检查请求msgseq"
	CodeActiveDenied    = wire.CodeActiveDenied // "主动消息失败, 无权限"
	CodeMsgLimit        = wire.CodeMsgLimit     // "msg limit exceed": the replies per inbound message are used up
	CodeMsgExpired      = wire.CodeMsgExpired   // the reply window has passed
	CodeBadMsgID        = 304026                // msg_id or event_id unknown, or of another target
	CodeEmptyMessage    = wire.CodeEmptyMessage // "message is empty"
	CodeMarkdownBoth    = 50057                 // markdown with both content and a template
	CodeAuditPending    = wire.CodeAuditPending // "push message is waiting for audit now"
	CodeRecallExpired   = 306011                // the recall window has passed
)

// Message text of the token refusal, as the platform sends it.
const tokenRefusedMessage = "token not exist or expire"

// Defaults of the send API's rules.
const (
	// DefaultRecallWindow is how long after sending a c2c or group message
	// can be recalled.
	DefaultRecallWindow = 2 * time.Minute
	// maxAPIBody bounds a send API request body (uploads carry base64).
	maxAPIBody = 32 << 20
)

// Scene is the kind of a send target.
type Scene string

// Scenes.
const (
	SceneC2C     Scene = "c2c"     // /v2/users/{openid}
	SceneGroup   Scene = "group"   // /v2/groups/{group_openid}
	SceneChannel Scene = "channel" // /channels/{channel_id}
	SceneDM      Scene = "dm"      // /dms/{guild_id}
)

// SendTarget is a conversation messages are sent to.
type SendTarget struct {
	Scene Scene
	ID    string // user openid, group openid, channel id or DM guild id
}

// String is "scene:id".
func (t SendTarget) String() string { return string(t.Scene) + ":" + t.ID }

// SendFault is a scripted failure of the send API, queued with
// [Server.FailNextSends].
type SendFault int

// Send faults.
const (
	// FaultServerError answers HTTP 500; nothing is delivered.
	FaultServerError SendFault = iota + 1
	// FaultRateLimited answers HTTP 429; nothing is delivered.
	FaultRateLimited
	// FaultHang sends no answer until the request's context ends (or the
	// server closes); nothing is delivered.
	FaultHang
	// FaultLoseAnswer processes the request (a message is delivered), then
	// sends no answer until the request's context ends: the answer lost on
	// the way back.
	FaultLoseAnswer
	// FaultTokenExpired answers HTTP 401 with code 11244, whatever the
	// token.
	FaultTokenExpired
	// FaultPendingAudit answers HTTP 202 with code 304023 and an audit id:
	// the message is held for audit, not delivered (its msg_seq is taken).
	FaultPendingAudit
)

// String names the fault.
func (f SendFault) String() string {
	switch f {
	case 0:
		return "none"
	case FaultServerError:
		return "server-error"
	case FaultRateLimited:
		return "rate-limited"
	case FaultHang:
		return "hang"
	case FaultLoseAnswer:
		return "lose-answer"
	case FaultTokenExpired:
		return "token-expired"
	case FaultPendingAudit:
		return "pending-audit"
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// ReplyLimit is one scene's passive-reply rule.
type ReplyLimit struct {
	// Window is how long after the inbound message replies are accepted.
	// Zero means the scene's default; negative means forever.
	Window time.Duration
	// Replies is how many replies one inbound message accepts. Zero means
	// the scene's default; negative means no limit.
	Replies int
}

// ReplyLimits are the passive-reply rules the fake enforces, measured with
// its send clock from the time it first knew the inbound id. The zero value
// means the platform's: c2c 60 minutes / 5 replies, group 5 minutes / 5,
// channel and DM 5 minutes / unlimited.
type ReplyLimits struct {
	C2C, Group, Channel, DM ReplyLimit
}

func (l ReplyLimits) of(sc Scene) ReplyLimit {
	var v, def ReplyLimit
	switch sc {
	case SceneC2C:
		v, def = l.C2C, ReplyLimit{60 * time.Minute, 5}
	case SceneGroup:
		v, def = l.Group, ReplyLimit{5 * time.Minute, 5}
	case SceneChannel:
		v, def = l.Channel, ReplyLimit{5 * time.Minute, -1}
	case SceneDM:
		v, def = l.DM, ReplyLimit{5 * time.Minute, -1}
	}
	if v.Window == 0 {
		v.Window = def.Window
	}
	if v.Replies == 0 {
		v.Replies = def.Replies
	}
	return v
}

// SentMessage is one request to a message endpoint, whatever came of it.
type SentMessage struct {
	At     time.Time // the send clock when it arrived
	Target SendTarget
	Path   string
	// Header is the request's header, with the token in Authorization
	// replaced by "<redacted>".
	Header http.Header
	// Body is the request body as received.
	Body json.RawMessage

	// Fields of the body (zero when absent or undecodable).
	MsgType   int
	HasMsgTyp bool // msg_type was present
	Content   string
	MsgID     string
	EventID   string
	MsgSeq    int
	HasMsgSeq bool // msg_seq was present

	// Status is the HTTP status answered, 0 when no answer was sent (a
	// hang). Code is the error code answered, 0 for success.
	Status int
	Code   int
	// TraceID is the answer's trace id (X-Tps-trace-ID).
	TraceID string
	// Fault is the scripted fault applied, 0 for none.
	Fault SendFault
	// Delivered: this request put a message in front of the user.
	// MessageID is that message's id.
	Delivered bool
	MessageID string
}

// DeliveredMessage is a message a user sees.
type DeliveredMessage struct {
	ID     string
	At     time.Time
	Target SendTarget
	// MsgType is the c2c/group msg_type (0 for channel and DM).
	MsgType int
	Content string
	// The rich parts, as sent.
	Markdown, Keyboard, Ark, Embed, MessageReference json.RawMessage
	// FileInfo of a media message; Image URL of a channel or DM message.
	FileInfo string
	Image    string
	// The passive reply's ids (empty for an active message).
	MsgID   string
	EventID string
	MsgSeq  int
}

// Upload is one request to a media upload endpoint.
type Upload struct {
	At         time.Time
	Target     SendTarget
	FileType   int
	URL        string
	FileData   []byte // decoded from base64
	FileName   string
	SrvSendMsg bool
	// FileInfo issued, empty when refused.
	FileInfo string
	Status   int
	Code     int
}

// Recall is one request to recall a message.
type Recall struct {
	At        time.Time
	Target    SendTarget
	MessageID string
	HideTip   string // the hidetip query value, as sent
	Status    int
	Code      int
}

// InteractionACK is one PUT /interactions/{id}.
type InteractionACK struct {
	At            time.Time
	ID            string
	Code          int
	CallbackAppID string // the X-Callback-AppID header
	Status        int
}

// InboundEvent is an event made by [Server.NewInbound]: the envelope's t,
// id and d, as a gateway client would receive it.
type InboundEvent struct {
	Type string
	ID   string
	Data json.RawMessage
}

// apiState is the send side's state, guarded by Server.mu.
type apiState struct {
	clock       func() time.Time
	limits      ReplyLimits
	allowActive bool
	faults      []apiFault

	sent      []SentMessage
	delivered []*deliveredRec
	messages  map[string]*deliveredRec // by message id
	inbound   map[string]*inboundRec   // by passive key
	files     map[string]Scene         // file_info → scene it serves
	uploads   []Upload
	recalls   []Recall
	acks      []InteractionACK
}

type apiFault struct {
	fault   SendFault
	status  int // with fault 0: a scripted error answer
	code    int
	message string
}

type deliveredRec struct {
	msg      DeliveredMessage
	recalled bool
}

// inboundRec is what the fake knows of a passive id.
type inboundRec struct {
	target  SendTarget
	at      time.Time      // the start of its reply window
	seqs    map[int]string // msg_seq taken → message id ("" when held for audit)
	replies int            // messages delivered under it
}

// apiAnswer is what a send API request gets.
type apiAnswer struct {
	status int
	body   any  // nil: no body
	hang   bool // no answer until the request ends
	code   int  // the error code in body, for the records
}

// apiErrorBody is the platform's error body: the fields of wire.APIError
// ({"message","code","err_code","trace_id"}), the type the clients decode
// it into, and the data of a pending-audit answer.
type apiErrorBody struct {
	wire.APIError
	Data any `json:"data,omitempty"`
}

func apiError(status, code int, msg string) apiAnswer {
	return apiAnswer{status: status, code: code, body: apiErrorBody{APIError: wire.APIError{Message: msg, Code: code, ErrCode: code}}}
}

// serveOpenAPI sets up the send side and its routes on mux.
func (s *Server) serveOpenAPI(mux *http.ServeMux) {
	s.api = apiState{
		clock:    time.Now,
		messages: make(map[string]*deliveredRec),
		inbound:  make(map[string]*inboundRec),
		files:    make(map[string]Scene),
	}
	for _, r := range []struct {
		prefix string
		scene  Scene
	}{{"/v2/users/", SceneC2C}, {"/v2/groups/", SceneGroup}, {"/channels/", SceneChannel}, {"/dms/", SceneDM}} {
		mux.HandleFunc("POST "+r.prefix+"{id}/messages", s.serveSend(r.scene))
		mux.HandleFunc("DELETE "+r.prefix+"{id}/messages/{mid}", s.serveRecall(r.scene))
		if r.scene == SceneC2C || r.scene == SceneGroup {
			mux.HandleFunc("POST "+r.prefix+"{id}/files", s.serveUpload(r.scene))
		}
	}
	mux.HandleFunc("PUT /interactions/{id}", s.serveInteractionACK)
	mux.HandleFunc("POST /users/@me/dms", s.serveCreateDMS)
}

// apiCall is a send API request past the common checks.
type apiCall struct {
	trace  string
	now    time.Time
	body   []byte
	header http.Header
	reject *apiAnswer // the common checks failed
	fault  apiFault
}

// beginAPI reads the body and checks the token and headers, then takes the
// next scripted fault.
func (s *Server) beginAPI(r *http.Request) *apiCall {
	c := &apiCall{trace: randomHex(16), header: r.Header.Clone()}
	if c.header.Get("Authorization") != "" {
		c.header.Set("Authorization", "<redacted>")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAPIBody+1))
	c.body = body
	s.mu.Lock()
	defer s.mu.Unlock()
	c.now = s.api.clock()
	value, hasPrefix := strings.CutPrefix(r.Header.Get("Authorization"), wire.TokenPrefix)
	app, valid := s.tokenAppLocked(value)
	ctype, _, ctErr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err != nil:
		c.reject = ptr(apiError(http.StatusBadRequest, CodeBadRequest, "read body: "+err.Error()))
	case len(body) > maxAPIBody:
		c.reject = ptr(apiError(http.StatusRequestEntityTooLarge, CodeBadRequest, "body too large"))
	case !hasPrefix || !valid:
		c.reject = ptr(apiError(http.StatusUnauthorized, CodeTokenInvalid, tokenRefusedMessage))
	case r.Header.Get("X-Union-Appid") != app:
		c.reject = ptr(apiError(http.StatusBadRequest, CodeBadRequest,
			fmt.Sprintf("X-Union-Appid %q does not match the token's app", r.Header.Get("X-Union-Appid"))))
	case r.Method != http.MethodDelete && (ctErr != nil || ctype != "application/json"):
		c.reject = ptr(apiError(http.StatusBadRequest, CodeBadRequest, "Content-Type must be application/json"))
	}
	if c.reject == nil && len(s.api.faults) > 0 {
		c.fault = s.api.faults[0]
		s.api.faults = s.api.faults[1:]
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// faultAnswer is the answer of a scripted fault that stops processing, if
// any.
func (c *apiCall) faultAnswer() (apiAnswer, bool) {
	f := c.fault
	switch f.fault {
	case 0:
		if f.status != 0 {
			return apiError(f.status, f.code, f.message), true
		}
	case FaultServerError:
		return apiError(http.StatusInternalServerError, 0, "internal server error"), true
	case FaultRateLimited:
		return apiError(http.StatusTooManyRequests, 0, "too many requests"), true
	case FaultHang:
		return apiAnswer{hang: true}, true
	case FaultTokenExpired:
		return apiError(http.StatusUnauthorized, CodeTokenInvalid, tokenRefusedMessage), true
	}
	return apiAnswer{}, false
}

// finish writes the answer, or for a hang waits until the request or the
// server ends.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, c *apiCall, a apiAnswer) {
	w.Header().Set("X-Tps-trace-ID", c.trace)
	if a.hang {
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		return
	}
	if eb, ok := a.body.(apiErrorBody); ok {
		eb.TraceID = c.trace
		a.body = eb
	}
	if a.body == nil {
		w.WriteHeader(a.status)
		return
	}
	writeJSON(w, a.status, a.body)
}

// sendBody is a message body, as the fake reads it.
type sendBody struct {
	MsgType  *int            `json:"msg_type"`
	Content  string          `json:"content"`
	Markdown json.RawMessage `json:"markdown"`
	Keyboard json.RawMessage `json:"keyboard"`
	Ark      json.RawMessage `json:"ark"`
	Embed    json.RawMessage `json:"embed"`
	Media    *struct {
		FileInfo string `json:"file_info"`
	} `json:"media"`
	Image            string          `json:"image"`
	MessageReference json.RawMessage `json:"message_reference"`
	MsgID            string          `json:"msg_id"`
	EventID          string          `json:"event_id"`
	MsgSeq           *int            `json:"msg_seq"`
}

func (s *Server) serveSend(scene Scene) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.beginAPI(r)
		rec := SentMessage{
			At: c.now, Target: SendTarget{scene, r.PathValue("id")}, Path: r.URL.Path,
			Header: c.header, Body: json.RawMessage(c.body), TraceID: c.trace, Fault: c.fault.fault,
		}
		var b sendBody
		decodeErr := json.Unmarshal(c.body, &b)
		if decodeErr == nil {
			rec.Content, rec.MsgID, rec.EventID = b.Content, b.MsgID, b.EventID
			if b.MsgType != nil {
				rec.MsgType, rec.HasMsgTyp = *b.MsgType, true
			}
			if b.MsgSeq != nil {
				rec.MsgSeq, rec.HasMsgSeq = *b.MsgSeq, true
			}
		}
		s.mu.Lock()
		a := s.messageLocked(c, &rec, &b, decodeErr)
		if !a.hang {
			rec.Status, rec.Code = a.status, a.code
		}
		s.api.sent = append(s.api.sent, rec)
		s.notifyLocked()
		s.mu.Unlock()
		s.finish(w, r, c, a)
	}
}

// messageLocked decides a message request and delivers the message.
func (s *Server) messageLocked(c *apiCall, rec *SentMessage, b *sendBody, decodeErr error) apiAnswer {
	if c.reject != nil {
		return *c.reject
	}
	if a, ok := c.faultAnswer(); ok {
		return a
	}
	if decodeErr != nil {
		return apiError(http.StatusBadRequest, CodeBadRequest, "body is not a message: "+decodeErr.Error())
	}
	t := rec.Target
	v2 := t.Scene == SceneC2C || t.Scene == SceneGroup
	if a, bad := checkMessage(t.Scene, b); bad {
		return a
	}
	if v2 && b.MsgType != nil && *b.MsgType == 7 && s.api.files[b.Media.FileInfo] != t.Scene {
		return apiError(http.StatusBadRequest, CodeBadRequest, "media.file_info was not uploaded for "+string(t.Scene)+" messages")
	}

	key := ""
	switch {
	case b.MsgID != "" && b.EventID != "":
		return apiError(http.StatusBadRequest, CodeBadRequest, "msg_id and event_id are exclusive")
	case b.MsgID != "":
		key = "msg_id " + b.MsgID
	case b.EventID != "":
		key = "event_id " + b.EventID
	}
	seq := 1 // the platform's default msg_seq
	if b.MsgSeq != nil {
		seq = *b.MsgSeq
	}
	var in *inboundRec
	if key == "" {
		if v2 && !s.api.allowActive {
			return apiError(http.StatusBadRequest, CodeActiveDenied, "主动消息失败, 无权限")
		}
	} else {
		in = s.inboundLocked(key, c.now)
		if in == nil || in.target != t {
			return apiError(http.StatusBadRequest, CodeBadMsgID, "invalid msg_id or event_id for this target")
		}
		if v2 {
			if _, dup := in.seqs[seq]; dup {
				return apiError(http.StatusBadRequest, CodeDuplicateMsgSeq, "消息被去重，请检查请求msgseq")
			}
		}
		lim := s.api.limits.of(t.Scene)
		if lim.Window >= 0 && c.now.Sub(in.at) > lim.Window {
			return apiError(http.StatusBadRequest, CodeMsgExpired, "msg expired")
		}
		if lim.Replies >= 0 && in.replies >= lim.Replies {
			return apiError(http.StatusBadRequest, CodeMsgLimit, "msg limit exceed")
		}
	}
	if c.fault.fault == FaultPendingAudit {
		if in != nil && v2 {
			in.seqs[seq] = ""
		}
		a := apiError(http.StatusAccepted, CodeAuditPending, "push message is waiting for audit now")
		eb := a.body.(apiErrorBody)
		eb.Data = map[string]any{"message_audit": map[string]string{"audit_id": "audit-" + randomHex(8)}}
		a.body = eb
		return a
	}

	n := s.nextUniqueLocked()
	d := DeliveredMessage{
		At: c.now, Target: t, Content: b.Content, Markdown: b.Markdown, Keyboard: b.Keyboard,
		Ark: b.Ark, Embed: b.Embed, MessageReference: b.MessageReference, Image: b.Image,
		MsgID: b.MsgID, EventID: b.EventID,
	}
	var answer any
	if v2 {
		d.ID = "ROBOT1.0_sent." + strconv.FormatUint(n, 10)
		d.MsgType, d.MsgSeq = *b.MsgType, seq
		if b.Media != nil {
			d.FileInfo = b.Media.FileInfo
		}
		answer = map[string]any{"id": d.ID, "timestamp": c.now.Unix(),
			"ext_info": map[string]string{"ref_idx": "REFIDX_" + strconv.FormatUint(n, 10)}}
	} else {
		d.ID = "08f3fb8b8f9ef7e2f1e10110b" + strconv.FormatUint(n, 10)
		answer = s.channelMessageLocked(d, n)
	}
	s.deliverLocked(d)
	if in != nil {
		if v2 {
			in.seqs[seq] = d.ID
		}
		in.replies++
	}
	rec.Delivered, rec.MessageID = true, d.ID
	if c.fault.fault == FaultLoseAnswer {
		return apiAnswer{hang: true}
	}
	return apiAnswer{status: http.StatusOK, body: answer}
}

// checkMessage applies the body rules of a scene.
func checkMessage(sc Scene, b *sendBody) (apiAnswer, bool) {
	if len(b.Markdown) > 0 && string(b.Markdown) != "null" {
		var md struct {
			Content          string `json:"content"`
			CustomTemplateID string `json:"custom_template_id"`
		}
		if err := json.Unmarshal(b.Markdown, &md); err != nil {
			return apiError(http.StatusBadRequest, CodeBadRequest, "markdown is not an object"), true
		}
		if md.Content != "" && md.CustomTemplateID != "" {
			return apiError(http.StatusBadRequest, CodeMarkdownBoth, "markdown content and custom_template_id are exclusive"), true
		}
	}
	has := func(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }
	if sc == SceneChannel || sc == SceneDM {
		if b.Content == "" && !has(b.Embed) && !has(b.Ark) && b.Image == "" && !has(b.Markdown) {
			return apiError(http.StatusBadRequest, CodeEmptyMessage, "message is empty"), true
		}
		return apiAnswer{}, false
	}
	if b.MsgType == nil {
		return apiError(http.StatusBadRequest, CodeBadRequest, "msg_type is required"), true
	}
	var empty bool
	switch *b.MsgType {
	case 0:
		empty = b.Content == ""
	case 2:
		empty = !has(b.Markdown)
	case 3:
		empty = !has(b.Ark)
	case 4:
		return apiError(http.StatusBadRequest, CodeBadRequest, "embed is not available for "+string(sc)+" messages"), true
	case 7:
		empty = b.Media == nil || b.Media.FileInfo == ""
	default:
		return apiError(http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("msg_type %d is not supported", *b.MsgType)), true
	}
	if empty {
		return apiError(http.StatusBadRequest, CodeEmptyMessage, "message is empty"), true
	}
	if has(b.Embed) || b.Image != "" {
		return apiError(http.StatusBadRequest, CodeBadRequest, "embed and image are not available for "+string(sc)+" messages"), true
	}
	return apiAnswer{}, false
}

// channelMessageLocked is the answer to a channel or DM message: the whole
// message object.
func (s *Server) channelMessageLocked(d DeliveredMessage, n uint64) map[string]any {
	bot := botUser(s.firstAppLocked())
	m := map[string]any{
		"id": d.ID, "content": d.Content, "timestamp": d.At.In(chinaTime).Format(time.RFC3339),
		"author":         map[string]any{"id": bot.ID, "username": bot.Username, "bot": true},
		"seq_in_channel": strconv.FormatUint(n, 10),
	}
	if d.Target.Scene == SceneChannel {
		m["channel_id"] = d.Target.ID
	} else {
		m["guild_id"] = d.Target.ID
		m["direct_message"] = true
	}
	return m
}

func (s *Server) firstAppLocked() string {
	first := ""
	for id := range s.apps {
		if first == "" || id < first {
			first = id
		}
	}
	return first
}

func (s *Server) deliverLocked(d DeliveredMessage) {
	r := &deliveredRec{msg: d}
	s.api.delivered = append(s.api.delivered, r)
	s.api.messages[d.ID] = r
}

// inboundLocked returns what the fake knows of a passive key: registered by
// NewInbound, or found in a session's dispatches (then its window starts
// now). It returns nil for an id the platform never sent.
func (s *Server) inboundLocked(key string, now time.Time) *inboundRec {
	if in := s.api.inbound[key]; in != nil {
		return in
	}
	for _, sess := range s.order {
		for _, e := range sess.log {
			t, k, ok := replyKey(e.frame.T, e.frame.ID, e.frame.D)
			if ok && k == key {
				in := &inboundRec{target: t, at: now, seqs: make(map[int]string)}
				s.api.inbound[key] = in
				return in
			}
		}
	}
	return nil
}

// replyKey is where a reply to an event goes and the passive key it uses:
// msg_id d.id for messages, event_id d.id for interactions, event_id the
// envelope id for FRIEND_ADD, C2C_MSG_RECEIVE, GROUP_ADD_ROBOT and
// GROUP_MSG_RECEIVE.
func replyKey(eventType, envelopeID string, d json.RawMessage) (SendTarget, string, bool) {
	var v struct {
		ID     string `json:"id"`
		Author struct {
			UserOpenID string `json:"user_openid"`
		} `json:"author"`
		GroupOpenID string `json:"group_openid"`
		ChannelID   string `json:"channel_id"`
		GuildID     string `json:"guild_id"`
		OpenID      string `json:"openid"`
		UserOpenID  string `json:"user_openid"`
		Scene       string `json:"scene"`
	}
	if json.Unmarshal(d, &v) != nil {
		return SendTarget{}, "", false
	}
	var t SendTarget
	key := "msg_id " + v.ID
	switch eventType {
	case "C2C_MESSAGE_CREATE":
		t = SendTarget{SceneC2C, v.Author.UserOpenID}
	case "GROUP_AT_MESSAGE_CREATE", "GROUP_MESSAGE_CREATE":
		t = SendTarget{SceneGroup, v.GroupOpenID}
	case "AT_MESSAGE_CREATE", "MESSAGE_CREATE":
		t = SendTarget{SceneChannel, v.ChannelID}
	case "DIRECT_MESSAGE_CREATE":
		t = SendTarget{SceneDM, v.GuildID}
	case "INTERACTION_CREATE":
		key = "event_id " + v.ID
		switch v.Scene {
		case "group":
			t = SendTarget{SceneGroup, v.GroupOpenID}
		case "c2c":
			t = SendTarget{SceneC2C, v.UserOpenID}
		default:
			return SendTarget{}, "", false
		}
	case "FRIEND_ADD", "C2C_MSG_RECEIVE":
		t, key = SendTarget{SceneC2C, v.OpenID}, "event_id "+envelopeID
	case "GROUP_ADD_ROBOT", "GROUP_MSG_RECEIVE":
		t, key = SendTarget{SceneGroup, v.GroupOpenID}, "event_id "+envelopeID
	default:
		return SendTarget{}, "", false
	}
	if t.ID == "" || key == "msg_id " || key == "event_id " {
		return SendTarget{}, "", false
	}
	return t, key, true
}

func (s *Server) serveUpload(scene Scene) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.beginAPI(r)
		up := Upload{At: c.now, Target: SendTarget{scene, r.PathValue("id")}}
		var b struct {
			FileType   int    `json:"file_type"`
			URL        string `json:"url"`
			FileData   string `json:"file_data"`
			FileName   string `json:"file_name"`
			SrvSendMsg bool   `json:"srv_send_msg"`
		}
		decodeErr := json.Unmarshal(c.body, &b)
		var data []byte
		if decodeErr == nil && b.FileData != "" {
			data, decodeErr = base64.StdEncoding.DecodeString(b.FileData)
		}
		up.FileType, up.URL, up.FileData, up.FileName, up.SrvSendMsg = b.FileType, b.URL, data, b.FileName, b.SrvSendMsg
		s.mu.Lock()
		a := s.uploadLocked(c, &up, decodeErr)
		if !a.hang {
			up.Status, up.Code = a.status, a.code
		}
		s.api.uploads = append(s.api.uploads, up)
		s.notifyLocked()
		s.mu.Unlock()
		s.finish(w, r, c, a)
	}
}

func (s *Server) uploadLocked(c *apiCall, up *Upload, decodeErr error) apiAnswer {
	if c.reject != nil {
		return *c.reject
	}
	if a, ok := c.faultAnswer(); ok {
		return a
	}
	if c.fault.fault == FaultPendingAudit {
		return apiError(http.StatusAccepted, CodeAuditPending, "push message is waiting for audit now")
	}
	switch {
	case decodeErr != nil:
		return apiError(http.StatusBadRequest, CodeBadRequest, "body is not an upload: "+decodeErr.Error())
	case up.FileType < 1 || up.FileType > 4:
		return apiError(http.StatusBadRequest, CodeBadRequest, "file_type must be 1, 2, 3 or 4")
	case (up.URL == "") == (len(up.FileData) == 0):
		return apiError(http.StatusBadRequest, CodeBadRequest, "exactly one of url and file_data is required")
	}
	if up.URL != "" {
		if u, err := url.Parse(up.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return apiError(http.StatusBadRequest, CodeBadRequest, "url is not an http(s) URL")
		}
	}
	if up.SrvSendMsg && !s.api.allowActive {
		return apiError(http.StatusBadRequest, CodeActiveDenied, "主动消息失败, 无权限")
	}
	n := s.nextUniqueLocked()
	up.FileInfo = "fileinfo-" + string(up.Target.Scene) + "-" + randomHex(12)
	s.api.files[up.FileInfo] = up.Target.Scene
	answer := map[string]any{"file_uuid": newSessionID(), "file_info": up.FileInfo, "ttl": 3600}
	if up.SrvSendMsg {
		d := DeliveredMessage{ID: "ROBOT1.0_sent." + strconv.FormatUint(n, 10), At: c.now,
			Target: up.Target, MsgType: 7, FileInfo: up.FileInfo}
		s.deliverLocked(d)
		answer["id"] = d.ID
	}
	if c.fault.fault == FaultLoseAnswer {
		return apiAnswer{hang: true}
	}
	return apiAnswer{status: http.StatusOK, body: answer}
}

func (s *Server) serveRecall(scene Scene) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.beginAPI(r)
		rc := Recall{At: c.now, Target: SendTarget{scene, r.PathValue("id")}, MessageID: r.PathValue("mid"),
			HideTip: r.URL.Query().Get("hidetip")}
		s.mu.Lock()
		a := s.recallLocked(c, &rc)
		if !a.hang {
			rc.Status, rc.Code = a.status, a.code
		}
		s.api.recalls = append(s.api.recalls, rc)
		s.notifyLocked()
		s.mu.Unlock()
		s.finish(w, r, c, a)
	}
}

func (s *Server) recallLocked(c *apiCall, rc *Recall) apiAnswer {
	if c.reject != nil {
		return *c.reject
	}
	if a, ok := c.faultAnswer(); ok {
		return a
	}
	d := s.api.messages[rc.MessageID]
	if d == nil || d.recalled || d.msg.Target != rc.Target {
		return apiError(http.StatusNotFound, CodeNotFound, "message not found")
	}
	v2 := rc.Target.Scene == SceneC2C || rc.Target.Scene == SceneGroup
	if v2 && c.now.Sub(d.msg.At) > DefaultRecallWindow {
		return apiError(http.StatusBadRequest, CodeRecallExpired, "message can no longer be recalled")
	}
	d.recalled = true
	if c.fault.fault == FaultLoseAnswer {
		return apiAnswer{hang: true}
	}
	if v2 {
		return apiAnswer{status: http.StatusOK, body: map[string]any{}}
	}
	return apiAnswer{status: http.StatusNoContent}
}

func (s *Server) serveInteractionACK(w http.ResponseWriter, r *http.Request) {
	c := s.beginAPI(r)
	ack := InteractionACK{At: c.now, ID: r.PathValue("id"), CallbackAppID: r.Header.Get("X-Callback-AppID")}
	var b struct {
		Code *int `json:"code"`
	}
	decodeErr := json.Unmarshal(c.body, &b)
	if b.Code != nil {
		ack.Code = *b.Code
	}
	s.mu.Lock()
	var a apiAnswer
	if c.reject != nil {
		a = *c.reject
	} else if fa, ok := c.faultAnswer(); ok {
		a = fa
	} else if decodeErr != nil || b.Code == nil || *b.Code < 0 || *b.Code > 5 {
		a = apiError(http.StatusBadRequest, CodeBadRequest, `body must be {"code":0..5}`)
	} else if c.fault.fault == FaultLoseAnswer {
		a = apiAnswer{hang: true}
	} else {
		a = apiAnswer{status: http.StatusOK, body: map[string]any{}}
	}
	if !a.hang {
		ack.Status = a.status
	}
	s.api.acks = append(s.api.acks, ack)
	s.notifyLocked()
	s.mu.Unlock()
	s.finish(w, r, c, a)
}

func (s *Server) serveCreateDMS(w http.ResponseWriter, r *http.Request) {
	c := s.beginAPI(r)
	var b struct {
		RecipientID   string `json:"recipient_id"`
		SourceGuildID string `json:"source_guild_id"`
	}
	decodeErr := json.Unmarshal(c.body, &b)
	var a apiAnswer
	if c.reject != nil {
		a = *c.reject
	} else if fa, ok := c.faultAnswer(); ok {
		a = fa
	} else if decodeErr != nil || b.RecipientID == "" || b.SourceGuildID == "" {
		a = apiError(http.StatusBadRequest, CodeBadRequest, "recipient_id and source_guild_id are required")
	} else {
		guild := dmGuildID(b.RecipientID, b.SourceGuildID)
		a = apiAnswer{status: http.StatusOK, body: map[string]any{
			"guild_id": guild, "channel_id": "9" + guild[1:], "create_time": strconv.FormatInt(c.now.Unix(), 10)}}
		if c.fault.fault == FaultLoseAnswer {
			a = apiAnswer{hang: true}
		}
	}
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
	s.finish(w, r, c, a)
}

// dmGuildID is the stable DM guild id of a member met in a guild.
func dmGuildID(recipient, guild string) string {
	var h uint64 = 14695981039346656037
	for _, b := range []byte(recipient + "\x00" + guild) {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return strconv.FormatUint(8000000000000000000+h%1000000000000000000, 10)
}

// NewInbound makes an event the way the platform would send it, without
// emitting it on any session, and registers its reply id so that the send
// API accepts replies to it; its reply window starts now (by the send
// clock), and its d.timestamp says so. It knows the types of
// [Session.EmitMessage] and GROUP_MESSAGE_CREATE, C2C_MSG_RECEIVE and
// GROUP_MSG_RECEIVE; other types give ErrUnknownEvent.
func (s *Server) NewInbound(eventType string) (InboundEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return InboundEvent{}, ErrClosed
	}
	n := s.nextUniqueLocked()
	now := s.api.clock()
	app := s.firstAppLocked()
	var body any
	var err error
	switch eventType {
	case "GROUP_MESSAGE_CREATE":
		body, err = messageBody(wire.EventGroupAtMessageCreate, app, botUser(app), n, now)
	case "C2C_MSG_RECEIVE":
		body, err = messageBody(wire.EventFriendAdd, app, botUser(app), n, now)
	case "GROUP_MSG_RECEIVE":
		body, err = messageBody(wire.EventGroupAddRobot, app, botUser(app), n, now)
	default:
		body, err = messageBody(eventType, app, botUser(app), n, now)
	}
	if err != nil {
		return InboundEvent{}, err
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return InboundEvent{}, fmt.Errorf("encode %s body: %w", eventType, err)
	}
	return s.registerInboundLocked(eventType, eventType+":"+strconv.FormatUint(n, 10), raw, now), nil
}

// NewInboundWith is NewInbound with a body of the caller's (encoded with
// encoding/json; a json.RawMessage is kept as it is) and an envelope id
// ("" means "<TYPE>:<n>"). An event with no reply route is returned all the
// same, and registers nothing.
func (s *Server) NewInboundWith(eventType, envelopeID string, d any) (InboundEvent, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return InboundEvent{}, fmt.Errorf("encode %s body: %w", eventType, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return InboundEvent{}, ErrClosed
	}
	if envelopeID == "" {
		envelopeID = eventType + ":" + strconv.FormatUint(s.nextUniqueLocked(), 10)
	}
	return s.registerInboundLocked(eventType, envelopeID, raw, s.api.clock()), nil
}

func (s *Server) registerInboundLocked(eventType, id string, raw json.RawMessage, now time.Time) InboundEvent {
	ev := InboundEvent{Type: eventType, ID: id, Data: raw}
	if t, key, ok := replyKey(ev.Type, ev.ID, ev.Data); ok {
		s.api.inbound[key] = &inboundRec{target: t, at: now, seqs: make(map[int]string)}
	}
	s.notifyLocked()
	return ev
}

// Sent returns every request to a message endpoint, in arrival order,
// refused and faulted ones included.
func (s *Server) Sent() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SentMessage(nil), s.api.sent...)
}

// WaitSent waits until at least n message requests have arrived and
// returns them all.
func (s *Server) WaitSent(ctx context.Context, n int) ([]SentMessage, error) {
	var out []SentMessage
	err := s.Wait(ctx, func() bool {
		out = s.Sent()
		return len(out) >= n
	})
	return out, err
}

// Delivered returns what the user (or group, channel, DM) of target sees:
// the messages delivered to it, in order, each once (a request the
// platform dropped as a repeat delivers nothing), recalled ones left out.
func (s *Server) Delivered(target SendTarget) []DeliveredMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DeliveredMessage
	for _, d := range s.api.delivered {
		if d.msg.Target == target && !d.recalled {
			out = append(out, d.msg)
		}
	}
	return out
}

// DeliveredCount counts the messages delivered to every target, recalled
// ones included.
func (s *Server) DeliveredCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.api.delivered)
}

// Uploads returns every media upload request, in order.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.api.uploads...)
}

// Recalls returns every recall request, in order.
func (s *Server) Recalls() []Recall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recall(nil), s.api.recalls...)
}

// InteractionACKs returns every interaction ACK request, in order.
func (s *Server) InteractionACKs() []InteractionACK {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]InteractionACK(nil), s.api.acks...)
}

// FailNextSends makes the next n requests to the send API (messages,
// uploads, recalls, interaction ACKs, DM sessions) fail with fault, after
// the token and header checks.
func (s *Server) FailNextSends(n int, fault SendFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.api.faults = append(s.api.faults, apiFault{fault: fault})
	}
}

// FailNextSendsWith makes the next n requests to the send API answer
// status with the error body {"message":msg,"code":code,"err_code":code,
// "trace_id":…}, after the token and header checks.
func (s *Server) FailNextSendsWith(n, status, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.api.faults = append(s.api.faults, apiFault{status: status, code: code, message: msg})
	}
}

// SetReplyLimits replaces the passive-reply rules the send API enforces.
func (s *Server) SetReplyLimits(l ReplyLimits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.api.limits = l
}

// SetSendClock sets the clock of the send API: the times it records, reply
// windows, recall windows and NewInbound timestamps. nil means time.Now.
// Token lifetimes keep the real clock.
func (s *Server) SetSendClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.api.clock = now
}

// AllowActiveSends makes the send API accept c2c and group messages (and
// uploads with srv_send_msg) that answer no inbound message; by default
// they are refused with 40034102, as the platform has withdrawn active
// push.
func (s *Server) AllowActiveSends(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.api.allowActive = on
}
