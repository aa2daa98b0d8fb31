package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SendResult is the outcome of a message send the platform accepted.
type SendResult struct {
	// ID is the new message's id (use it to retract the message). It is
	// empty for a Duplicate or PendingAudit result.
	ID string
	// Timestamp is the platform's time for the message, when it sent one.
	Timestamp time.Time
	// RefIdx is the answer's ext_info.ref_idx (c2c and group), used to
	// quote the message later.
	RefIdx string
	// MsgSeq is the msg_seq sent (c2c and group; 0 for channel and DM).
	MsgSeq int
	// Duplicate: the platform answered 40054005 for a msg_seq qqgate
	// numbered or the caller chose, or on a retry: the message had already
	// been delivered, by an earlier attempt or an earlier run of the
	// handler. The user saw it once.
	Duplicate bool
	// PendingAudit: the platform accepted the message but holds it for
	// audit (HTTP 202, codes 304023/304024); the verdict comes later as a
	// MESSAGE_AUDIT_PASS or MESSAGE_AUDIT_REJECT event carrying AuditID.
	PendingAudit bool
	// AuditID identifies the audit of a PendingAudit message.
	AuditID string
	// Attempts is how many HTTP requests the send took.
	Attempts int
	// TraceID is the platform's trace id of the last answer, if any.
	TraceID string
	// Raw is the answer's body (for a channel or DM message, the whole
	// message object).
	Raw json.RawMessage
}

// seqSource says where a msg_seq came from.
type seqSource int

const (
	seqNone     seqSource = iota // channel and DM: no msg_seq
	seqNumbered                  // qqgate's per-inbound numbering
	seqCaller                    // Message.MsgSeq
	seqFresh                     // FreshMsgSeq, for an active send
)

// PostC2CMessage sends m to the QQ user openid (POST
// /v2/users/{openid}/messages). With m.MsgID or m.EventID it is a passive
// reply, numbered and checked against the c2c limits; without, an active
// send, which the platform may refuse (ErrPermission, ErrQuota).
func (c *Client) PostC2CMessage(ctx context.Context, openid string, m *Message) (*SendResult, error) {
	return c.SendTo(ctx, Target{Kind: KindC2C, ID: openid}, m)
}

// PostGroupMessage sends m to the QQ group groupOpenID (POST
// /v2/groups/{group_openid}/messages), as PostC2CMessage does.
func (c *Client) PostGroupMessage(ctx context.Context, groupOpenID string, m *Message) (*SendResult, error) {
	return c.SendTo(ctx, Target{Kind: KindGroup, ID: groupOpenID}, m)
}

// PostChannelMessage sends m to the guild text channel channelID (POST
// /channels/{channel_id}/messages). The body has content, embed, ark,
// markdown, keyboard, image, message_reference and msg_id or event_id; no
// msg_type and no msg_seq.
func (c *Client) PostChannelMessage(ctx context.Context, channelID string, m *Message) (*SendResult, error) {
	return c.SendTo(ctx, Target{Kind: KindChannel, ID: channelID}, m)
}

// PostDMMessage sends m to the guild direct-message session guildID (POST
// /dms/{guild_id}/messages), with the channel body. The guild id comes
// from a DIRECT_MESSAGE_CREATE event or from [Client.CreateDMS].
func (c *Client) PostDMMessage(ctx context.Context, guildID string, m *Message) (*SendResult, error) {
	return c.SendTo(ctx, Target{Kind: KindDM, ID: guildID}, m)
}

// Reply answers the inbound event in with m, where [RouteOf] says: the
// target and msg_id or event_id come from the event, the reply window
// counts from its d.timestamp, and msg_seq is the next reply index under
// that id (see [WithReplyScope]). m must not name a different msg_id or
// event_id. An event that cannot be answered gives ErrNoRoute.
func (c *Client) Reply(ctx context.Context, in Inbound, m *Message) (*SendResult, error) {
	t, err := RouteOf(in)
	if err != nil {
		c.failed(err, http.MethodPost, "")
		return nil, err
	}
	return c.SendTo(ctx, t, m)
}

// ReplyText is Reply with a text message.
func (c *Client) ReplyText(ctx context.Context, in Inbound, text string) (*SendResult, error) {
	return c.Reply(ctx, in, Text(text))
}

// SendTo sends m to t: the common path of the Post methods and Reply.
// t.MsgID or t.EventID, when set, is put in the message (m must not name a
// different one), and t.At starts the reply window.
//
// Before any request, a passive send is checked against Config.Limits: a
// reply past its window fails with ErrReplyWindow, one over the reply
// count with ErrQuota. A c2c or group message gets its msg_seq: m.MsgSeq
// when set, else the next reply index of its inbound id (in ctx's reply
// scope, else the client's counter), else for an active send a fresh
// random one. Retries send the same body, so the same msg_seq; a 40054005
// answer on a retry, or for a numbered or chosen msg_seq, is success with
// Duplicate set.
func (c *Client) SendTo(ctx context.Context, t Target, m *Message) (*SendResult, error) {
	path, err := messagePath(t.Kind, t.ID)
	if err != nil {
		c.failed(err, http.MethodPost, "")
		return nil, err
	}
	res, err := c.sendTo(ctx, t, m, path)
	if err != nil {
		c.failed(err, http.MethodPost, path)
		return nil, err
	}
	return res, nil
}

func (c *Client) sendTo(ctx context.Context, t Target, m *Message, path string) (*SendResult, error) {
	if m == nil {
		return nil, invalid("nil message")
	}
	mm := *m
	if t.MsgID != "" {
		if mm.MsgID != "" && mm.MsgID != t.MsgID {
			return nil, invalid("message names msg_id %q, the target %q", mm.MsgID, t.MsgID)
		}
		mm.MsgID = t.MsgID
	}
	if t.EventID != "" {
		if mm.EventID != "" && mm.EventID != t.EventID {
			return nil, invalid("message names event_id %q, the target %q", mm.EventID, t.EventID)
		}
		mm.EventID = t.EventID
	}
	if err := mm.validate(t.Kind); err != nil {
		return nil, err
	}
	v2 := t.Kind == KindC2C || t.Kind == KindGroup

	var (
		seq = mm.MsgSeq
		src = seqNone
	)
	if key := passiveKey(&mm); key != "" {
		if v2 {
			src = seqCaller
		}
		auto := mm.MsgSeq == 0
		index, scoped := 0, false
		if auto {
			index, scoped = scopeIndex(ctx, key)
		}
		now := c.cfg.Clock()
		firstSeen, counted := c.inbound.touch(key, now, auto && !scoped)
		if auto && !scoped {
			index = counted
		}
		if auto && v2 {
			seq, src = index, seqNumbered
		}
		lim := c.cfg.Limits.of(t.Kind)
		start := t.At
		if start.IsZero() {
			start = firstSeen
		}
		if lim.Window >= 0 && now.Sub(start) > lim.Window {
			return nil, fmt.Errorf("openapi: reply to %s %s %s: %w: %s since the inbound message, the %s window is %s",
				t.Kind, t.ID, key, ErrReplyWindow, now.Sub(start).Round(time.Second), t.Kind, lim.Window)
		}
		if auto && lim.Replies >= 0 && index > lim.Replies {
			return nil, fmt.Errorf("openapi: reply to %s %s %s: %w: reply %d, at most %d per inbound message",
				t.Kind, t.ID, key, ErrQuota, index, lim.Replies)
		}
	} else if v2 && seq == 0 {
		seq, src = FreshMsgSeq(), seqFresh
	} else if v2 {
		src = seqCaller
	}

	body, err := mm.body(t.Kind, seq)
	if err != nil {
		return nil, invalid("encode message: %v", err)
	}
	safe := v2 && (mm.MsgID != "" || mm.EventID != "")
	a, attempts, err := c.call(ctx, &request{method: http.MethodPost, path: path, body: body, safe: safe})
	if !v2 {
		seq = 0
	}
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Class() == ClassDuplicate && (attempts > 1 || src == seqNumbered || src == seqCaller) {
			c.count(func(s *Stats) { s.Sent++; s.Duplicates++ })
			c.log.Debug().Str("path", path).Int("msg_seq", seq).Str("trace_id", ae.TraceID).
				Msg("already delivered (40054005)")
			return &SendResult{MsgSeq: seq, Duplicate: true, Attempts: attempts, TraceID: ae.TraceID}, nil
		}
		return nil, err
	}
	res := &SendResult{MsgSeq: seq, Attempts: a.attempts, TraceID: a.traceID, Raw: a.body}
	if a.pending {
		res.PendingAudit, res.AuditID = true, a.auditID
		c.count(func(s *Stats) { s.Sent++; s.PendingAudit++ })
		return res, nil
	}
	var ans struct {
		ID        json.RawMessage `json:"id"`
		Timestamp json.RawMessage `json:"timestamp"`
		ExtInfo   struct {
			RefIdx json.RawMessage `json:"ref_idx"`
		} `json:"ext_info"`
	}
	if len(bytes.TrimSpace(a.body)) > 0 {
		if err := json.Unmarshal(a.body, &ans); err != nil {
			// Delivered all the same: report it, with what could not be read.
			c.log.Warn().Err(err).Str("path", path).Msg("message sent; its answer is not the expected JSON")
		}
	}
	res.ID = rawString(ans.ID)
	res.Timestamp = parseTimestamp(ans.Timestamp)
	res.RefIdx = rawString(ans.ExtInfo.RefIdx)
	c.count(func(s *Stats) { s.Sent++ })
	return res, nil
}

// passiveKey is the dedup key of a passive send.
func passiveKey(m *Message) string {
	switch {
	case m.MsgID != "":
		return "msg_id " + m.MsgID
	case m.EventID != "":
		return "event_id " + m.EventID
	}
	return ""
}

// messagePath is the send endpoint of a target.
func messagePath(k Kind, id string) (string, error) {
	switch k {
	case KindC2C:
		return escapedPath("/v2/users/%s/messages", "user openid", id)
	case KindGroup:
		return escapedPath("/v2/groups/%s/messages", "group openid", id)
	case KindChannel:
		return escapedPath("/channels/%s/messages", "channel id", id)
	case KindDM:
		return escapedPath("/dms/%s/messages", "DM guild id", id)
	}
	return "", invalid("unknown target kind %q", k)
}

func escapedPath(format, what, id string) (string, error) {
	e, err := pathID(what, id)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(format, e), nil
}

// rawString reads a JSON string or number as a string.
func rawString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// FileType is the file_type of a media upload.
type FileType int

// Media file types.
const (
	FileImage FileType = 1 // png, jpg
	FileVideo FileType = 2 // mp4
	FileVoice FileType = 3 // silk
	FileFile  FileType = 4 // any file (not open to every bot)
)

// MediaUpload is a file to upload for a rich-media message: a URL the
// platform fetches, or the file's bytes (sent base64 as file_data).
type MediaUpload struct {
	FileType FileType
	// URL or Data, exactly one.
	URL  string
	Data []byte
	// FileName names a FileFile upload.
	FileName string
	// SrvSendMsg makes the platform send the file at once as an active
	// message, which uses the active quota. Leave it false and send
	// Media(info.FileInfo) as a reply instead.
	SrvSendMsg bool
}

// MediaInfo is an uploaded file.
type MediaInfo struct {
	FileUUID string
	// FileInfo goes into [MessageMedia]; it serves targets of the kind it
	// was uploaded for only.
	FileInfo string
	// TTL is how long FileInfo stays usable; 0 means long-lived.
	TTL time.Duration
	// ID is the message id when SrvSendMsg sent the file.
	ID string
}

// UploadC2CMedia uploads a file for messages to the QQ user openid (POST
// /v2/users/{openid}/files).
func (c *Client) UploadC2CMedia(ctx context.Context, openid string, up MediaUpload) (*MediaInfo, error) {
	return c.upload(ctx, "/v2/users/%s/files", "user openid", openid, up)
}

// UploadGroupMedia uploads a file for messages to the QQ group groupOpenID
// (POST /v2/groups/{group_openid}/files).
func (c *Client) UploadGroupMedia(ctx context.Context, groupOpenID string, up MediaUpload) (*MediaInfo, error) {
	return c.upload(ctx, "/v2/groups/%s/files", "group openid", groupOpenID, up)
}

func (c *Client) upload(ctx context.Context, format, what, id string, up MediaUpload) (*MediaInfo, error) {
	path, err := escapedPath(format, what, id)
	if err == nil {
		err = up.validate()
	}
	if err != nil {
		c.failed(err, http.MethodPost, path)
		return nil, err
	}
	body, err := json.Marshal(struct {
		FileType   FileType `json:"file_type"`
		URL        string   `json:"url,omitempty"`
		FileData   []byte   `json:"file_data,omitempty"` // encoding/json writes []byte as base64
		FileName   string   `json:"file_name,omitempty"`
		SrvSendMsg bool     `json:"srv_send_msg"`
	}{up.FileType, up.URL, up.Data, up.FileName, up.SrvSendMsg})
	if err != nil {
		return nil, invalid("encode upload: %v", err)
	}
	a, _, err := c.call(ctx, &request{method: http.MethodPost, path: path, body: body, safe: !up.SrvSendMsg})
	if err == nil && a.pending {
		err = &APIError{Status: a.status, Code: CodeAuditPending, Message: "upload pending audit",
			TraceID: a.traceID, Request: c.requestName(http.MethodPost, path), AuditID: a.auditID}
	}
	if err != nil {
		c.failed(err, http.MethodPost, path)
		return nil, err
	}
	var ans struct {
		FileUUID string          `json:"file_uuid"`
		FileInfo string          `json:"file_info"`
		TTL      flexInt         `json:"ttl"`
		ID       json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(a.body, &ans); err != nil || ans.FileInfo == "" {
		err = fmt.Errorf("openapi: POST %s: answer has no file_info (trace id %s)", path, a.traceID)
		c.failed(err, http.MethodPost, path)
		return nil, err
	}
	return &MediaInfo{FileUUID: ans.FileUUID, FileInfo: ans.FileInfo,
		TTL: time.Duration(ans.TTL) * time.Second, ID: rawString(ans.ID)}, nil
}

func (up *MediaUpload) validate() error {
	if up.FileType < FileImage || up.FileType > FileFile {
		return invalid("file type %d is not 1 (image), 2 (video), 3 (voice) or 4 (file)", up.FileType)
	}
	if (up.URL == "") == (len(up.Data) == 0) {
		return invalid("an upload needs exactly one of URL and Data")
	}
	if up.URL != "" {
		u, err := url.Parse(up.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return invalid("upload URL %q is not an http(s) URL", truncate(up.URL, 64))
		}
	}
	return nil
}

// RetractC2CMessage recalls the bot's message messageID sent to the QQ
// user openid (DELETE /v2/users/{openid}/messages/{message_id}). The
// platform allows it within 2 minutes of sending.
func (c *Client) RetractC2CMessage(ctx context.Context, openid, messageID string) error {
	return c.retract(ctx, "/v2/users/%s/messages/%s", "user openid", openid, messageID, "")
}

// RetractGroupMessage recalls the bot's message messageID sent to the QQ
// group groupOpenID (DELETE /v2/groups/{group_openid}/messages/{message_id}),
// within 2 minutes of sending.
func (c *Client) RetractGroupMessage(ctx context.Context, groupOpenID, messageID string) error {
	return c.retract(ctx, "/v2/groups/%s/messages/%s", "group openid", groupOpenID, messageID, "")
}

// RetractChannelMessage recalls the message messageID of channel channelID
// (DELETE /channels/{channel_id}/messages/{message_id}); hideTip hides the
// "message recalled" tip.
func (c *Client) RetractChannelMessage(ctx context.Context, channelID, messageID string, hideTip bool) error {
	return c.retract(ctx, "/channels/%s/messages/%s", "channel id", channelID, messageID, strconv.FormatBool(hideTip))
}

// RetractDMMessage recalls the bot's direct message messageID in the DM
// session guildID (DELETE /dms/{guild_id}/messages/{message_id}).
func (c *Client) RetractDMMessage(ctx context.Context, guildID, messageID string, hideTip bool) error {
	return c.retract(ctx, "/dms/%s/messages/%s", "DM guild id", guildID, messageID, strconv.FormatBool(hideTip))
}

func (c *Client) retract(ctx context.Context, format, what, id, messageID, hideTip string) error {
	eid, err := pathID(what, id)
	var emid string
	if err == nil {
		emid, err = pathID("message id", messageID)
	}
	if err != nil {
		c.failed(err, http.MethodDelete, "")
		return err
	}
	path := fmt.Sprintf(format, eid, emid)
	if hideTip != "" {
		path += "?hidetip=" + hideTip
	}
	if _, _, err := c.call(ctx, &request{method: http.MethodDelete, path: path, safe: true}); err != nil {
		c.failed(err, http.MethodDelete, path)
		return err
	}
	return nil
}

// InteractionResult is the code of an interaction ACK.
type InteractionResult int

// Interaction results.
const (
	InteractionOK           InteractionResult = 0
	InteractionFailed       InteractionResult = 1
	InteractionTooFrequent  InteractionResult = 2
	InteractionDuplicate    InteractionResult = 3
	InteractionNoPermission InteractionResult = 4
	InteractionAdminOnly    InteractionResult = 5
)

// AckInteraction answers the INTERACTION_CREATE id (its d.id) with code
// (PUT /interactions/{id} {"code":N}, with X-Callback-AppID). Until it is
// answered the user's client shows the button loading; the platform wants
// the answer within 5 seconds.
func (c *Client) AckInteraction(ctx context.Context, id string, code InteractionResult) error {
	eid, err := pathID("interaction id", id)
	if err == nil && (code < InteractionOK || code > InteractionAdminOnly) {
		err = invalid("interaction result %d is not 0-5", code)
	}
	path := "/interactions/" + eid
	if err != nil {
		c.failed(err, http.MethodPut, path)
		return err
	}
	body := []byte(`{"code":` + strconv.Itoa(int(code)) + `}`)
	if _, _, err := c.call(ctx, &request{method: http.MethodPut, path: path, body: body, safe: true, callbackAppID: true}); err != nil {
		c.failed(err, http.MethodPut, path)
		return err
	}
	return nil
}

// DMS is a guild direct-message session.
type DMS struct {
	// GuildID is the id to pass to PostDMMessage.
	GuildID    string
	ChannelID  string
	CreateTime string
}

// CreateDMS opens (or finds) the direct-message session with the guild
// member recipientID, met in the guild sourceGuildID (POST /users/@me/dms).
func (c *Client) CreateDMS(ctx context.Context, recipientID, sourceGuildID string) (*DMS, error) {
	const path = "/users/@me/dms"
	if strings.TrimSpace(recipientID) == "" || strings.TrimSpace(sourceGuildID) == "" {
		err := invalid("CreateDMS needs a recipient id and a source guild id")
		c.failed(err, http.MethodPost, path)
		return nil, err
	}
	body, err := json.Marshal(map[string]string{"recipient_id": recipientID, "source_guild_id": sourceGuildID})
	if err != nil {
		return nil, invalid("encode: %v", err)
	}
	a, _, err := c.call(ctx, &request{method: http.MethodPost, path: path, body: body, safe: true})
	if err != nil {
		c.failed(err, http.MethodPost, path)
		return nil, err
	}
	var ans struct {
		GuildID    json.RawMessage `json:"guild_id"`
		ChannelID  json.RawMessage `json:"channel_id"`
		CreateTime json.RawMessage `json:"create_time"`
	}
	if err := json.Unmarshal(a.body, &ans); err != nil || rawString(ans.GuildID) == "" {
		err = fmt.Errorf("openapi: POST %s: answer has no guild_id (trace id %s)", path, a.traceID)
		c.failed(err, http.MethodPost, path)
		return nil, err
	}
	return &DMS{GuildID: rawString(ans.GuildID), ChannelID: rawString(ans.ChannelID), CreateTime: rawString(ans.CreateTime)}, nil
}
