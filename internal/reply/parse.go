// Package reply turns what a `qqgate run` handler answers into messages and
// sends them where the event came from, through the account's OpenAPI
// client; it also counts every send for /metrics.
//
// A handler's output becomes replies by its mode (the handler's `reply:`):
//
//   - text: the whole output, trimmed, is one text message; an empty output
//     is no reply;
//   - json: each non-empty line is one message object (see [Body]); a line
//     that is not one is an error, logged and counted, and not sent;
//   - an http handler's response body goes by its Content-Type:
//     application/json is a message object or an array of them, text/plain
//     one text message, an empty body (or 204) no reply.
//
// [Sender.Replies] sends them in order, numbered 1, 2, 3… under the
// inbound message within one reply scope per handler attempt, so a handler
// run again (a retry, or a redelivery after a crash) sends the same
// msg_seq and the platform drops what it already delivered.
package reply

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/qqgate/qqgate/openapi"
)

// Modes of a handler's `reply:`.
const (
	ModeOff  = "off"
	ModeText = "text"
	ModeJSON = "json"
)

// MaxOutput bounds the output a handler may answer with: an exec
// command's stdout, an http handler's response body. A longer output is
// refused whole (nothing sent), never cut.
const MaxOutput = 1 << 20

// ErrBadOutput is wrapped by the errors of an output that cannot be
// replied: a json line that is not a message object, an unknown field, a
// Content-Type qqgate does not read, an output over MaxOutput.
var ErrBadOutput = errors.New("reply: bad handler output")

// Body is one message object, as a handler writes it: the fields of the
// platform's message body, without msg_id, event_id and msg_seq (qqgate
// sets those from the event it replies to):
//
//	{"content":"hi"}
//	{"msg_type":2,"markdown":{"content":"**hi**"},"keyboard":{"id":"…"}}
//	{"media":{"url":"https://…/a.png","file_type":1},"content":" "}
//
// media with url and file_type (1 image, 2 video, 3 voice, 4 file) is
// uploaded first, for the event's user or group, and sent as its
// file_info; media with file_info is sent as it is. embed and image are
// for guild channels and DMs, media for QQ users and groups.
type Body struct {
	Content          string                    `json:"content,omitempty"`
	MsgType          *int                      `json:"msg_type,omitempty"`
	Markdown         *openapi.MessageMarkdown  `json:"markdown,omitempty"`
	Keyboard         *openapi.MessageKeyboard  `json:"keyboard,omitempty"`
	Ark              *openapi.MessageArk       `json:"ark,omitempty"`
	Embed            *openapi.MessageEmbed     `json:"embed,omitempty"`
	Media            *Media                    `json:"media,omitempty"`
	Image            string                    `json:"image,omitempty"`
	MessageReference *openapi.MessageReference `json:"message_reference,omitempty"`

	// Refused: qqgate owns them.
	MsgID   json.RawMessage `json:"msg_id,omitempty"`
	EventID json.RawMessage `json:"event_id,omitempty"`
	MsgSeq  json.RawMessage `json:"msg_seq,omitempty"`
}

// Media is a Body's media: an uploaded file's file_info, or a URL for
// qqgate to upload.
type Media struct {
	FileInfo string `json:"file_info,omitempty"`
	URL      string `json:"url,omitempty"`
	FileType int    `json:"file_type,omitempty"`
}

// Out is one reply to send: a message and, for media given by URL, the
// upload that supplies its file_info.
type Out struct {
	Msg    openapi.Message
	Upload *openapi.MediaUpload
}

// Text is the reply of a text output: one message holding the trimmed
// output, or none when it is empty.
func Text(b []byte) ([]Out, error) {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, nil
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: the output is not valid UTF-8", ErrBadOutput)
	}
	return []Out{{Msg: openapi.Message{Content: s}}}, nil
}

// JSONLines is the replies of a json output: one per non-empty line. The
// errors name the lines that are not message objects (1-based); the other
// lines are returned all the same.
func JSONLines(b []byte) ([]Out, []error) {
	var outs []Out
	var errs []error
	for i, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		o, err := Decode(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
			continue
		}
		outs = append(outs, o)
	}
	return outs, errs
}

// HTTP is the replies of an http handler's response: by Content-Type,
// application/json (or any +json type) is a message object or an array of
// them, text/plain one text message; an empty body is no reply whatever
// the type.
func HTTP(contentType string, body []byte) ([]Out, []error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil && contentType != "" {
		return nil, []error{fmt.Errorf("%w: Content-Type %q: %v", ErrBadOutput, contentType, err)}
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		trimmed := bytes.TrimSpace(body)
		if trimmed[0] != '[' {
			o, err := Decode(trimmed)
			if err != nil {
				return nil, []error{err}
			}
			return []Out{o}, nil
		}
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, []error{fmt.Errorf("%w: not a JSON array of message objects: %v", ErrBadOutput, err)}
		}
		var outs []Out
		var errs []error
		for i, it := range items {
			o, err := Decode(it)
			if err != nil {
				errs = append(errs, fmt.Errorf("item %d: %w", i, err))
				continue
			}
			outs = append(outs, o)
		}
		return outs, errs
	case mt == "text/plain":
		outs, err := Text(body)
		if err != nil {
			return nil, []error{err}
		}
		return outs, nil
	}
	return nil, []error{fmt.Errorf("%w: Content-Type %q: answer application/json or text/plain", ErrBadOutput, contentType)}
}

// Decode reads one message object (see Body). Unknown fields, msg_id,
// event_id and msg_seq, and a message with nothing to show are errors
// wrapping ErrBadOutput.
func Decode(b []byte) (Out, error) {
	var o Out
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return o, fmt.Errorf("%w: not a JSON object: %s", ErrBadOutput, quoteShort(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var body Body
	if err := dec.Decode(&body); err != nil {
		return o, fmt.Errorf("%w: %v: %s", ErrBadOutput, err, quoteShort(b))
	}
	if dec.More() {
		return o, fmt.Errorf("%w: more than one JSON value: %s", ErrBadOutput, quoteShort(b))
	}
	return body.Out()
}

// Out checks b and turns it into a reply.
func (b *Body) Out() (Out, error) {
	var o Out
	for name, v := range map[string]json.RawMessage{"msg_id": b.MsgID, "event_id": b.EventID, "msg_seq": b.MsgSeq} {
		if v != nil {
			return o, fmt.Errorf("%w: %s is set by qqgate from the event replied to; leave it out", ErrBadOutput, name)
		}
	}
	m := openapi.Message{
		Content:          b.Content,
		Markdown:         b.Markdown,
		Keyboard:         b.Keyboard,
		Ark:              b.Ark,
		Embed:            b.Embed,
		Image:            b.Image,
		MessageReference: b.MessageReference,
	}
	if b.MsgType != nil {
		m.MsgType = openapi.MsgType(*b.MsgType)
	}
	if md := b.Media; md != nil {
		switch {
		case md.FileInfo != "" && md.URL != "":
			return o, fmt.Errorf("%w: media has both file_info and url", ErrBadOutput)
		case md.FileInfo != "":
			m.Media = &openapi.MessageMedia{FileInfo: md.FileInfo}
		case md.URL != "":
			if md.FileType < 1 || md.FileType > 4 {
				return o, fmt.Errorf("%w: media url needs file_type 1 (image), 2 (video), 3 (voice) or 4 (file), not %d", ErrBadOutput, md.FileType)
			}
			o.Upload = &openapi.MediaUpload{FileType: openapi.FileType(md.FileType), URL: md.URL}
		default:
			return o, fmt.Errorf("%w: media needs file_info, or url and file_type", ErrBadOutput)
		}
	}
	if m.Content == "" && m.Markdown == nil && m.Ark == nil && m.Embed == nil && b.Media == nil && m.Image == "" {
		return o, fmt.Errorf("%w: the message has nothing to show (no content, markdown, ark, embed, media or image)", ErrBadOutput)
	}
	o.Msg = m
	return o, nil
}

// quoteShort quotes at most 80 bytes of b, for an error.
func quoteShort(b []byte) string {
	const max = 80
	if len(b) > max {
		return fmt.Sprintf("%q…", b[:max])
	}
	return fmt.Sprintf("%q", b)
}
