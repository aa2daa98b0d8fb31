package openapi

import (
	"encoding/json"
	"fmt"
)

// MsgType is the msg_type of a c2c or group message.
type MsgType int

// Message types of c2c and group messages. Channel and DM messages have no
// msg_type.
const (
	MsgTypeText     MsgType = 0
	MsgTypeMarkdown MsgType = 2
	MsgTypeArk      MsgType = 3
	MsgTypeEmbed    MsgType = 4 // not available for c2c and group
	MsgTypeMedia    MsgType = 7
)

// Message is one message to send. Set the content kinds the scene allows:
//
//   - c2c and group: Content (text), Markdown, Keyboard, Ark, Media
//     (msg_type 7, from an upload), MessageReference;
//   - channel and DM: Content, Markdown, Keyboard, Ark, Embed, Image (a
//     URL), MessageReference.
//
// Embed on a c2c or group message, or Media or Image where the scene has
// no such field, is refused locally with ErrInvalidMessage.
//
// MsgID or EventID makes the message a passive reply; [Client.Reply] fills
// them in from the inbound event. MsgSeq is for c2c and group only: leave
// it zero and qqgate numbers replies 1, 2, 3… per inbound message (see
// [WithReplyScope]) and gives an active send a fresh random one.
//
// The send methods never modify the Message.
type Message struct {
	// Content is the text. Required for a text message.
	Content string
	// MsgType, for c2c and group, overrides the type derived from the
	// content kinds (media 7, markdown 2, ark 3, else text 0). Zero means
	// derived.
	MsgType MsgType

	Markdown         *MessageMarkdown
	Keyboard         *MessageKeyboard
	Ark              *MessageArk
	Embed            *MessageEmbed // channel and DM only
	Media            *MessageMedia // c2c and group only
	Image            string        // channel and DM only: an image URL
	MessageReference *MessageReference

	// MsgID is the id of the inbound message this replies to.
	MsgID string
	// EventID is the id of the inbound event this replies to (a passive
	// message answering a non-message event).
	EventID string
	// MsgSeq, for c2c and group, is the reply's sequence number under
	// MsgID or EventID. Zero means qqgate chooses it. A chosen value makes
	// a 40054005 answer mean "already delivered".
	MsgSeq int
}

// MessageMarkdown is a markdown message: native Content, or a template
// (CustomTemplateID with Params), never both.
type MessageMarkdown struct {
	Content          string           `json:"content,omitempty"`
	CustomTemplateID string           `json:"custom_template_id,omitempty"`
	Params           []MarkdownParams `json:"params,omitempty"`
}

// MarkdownParams is one template parameter.
type MarkdownParams struct {
	Key    string   `json:"key"`
	Values []string `json:"values"`
}

// MessageKeyboard is a keyboard: a template ID, or inline Content, never
// both. Inline keyboards have at most 5 rows of at most 5 buttons.
type MessageKeyboard struct {
	ID      string           `json:"id,omitempty"`
	Content *KeyboardContent `json:"content,omitempty"`
}

// KeyboardContent is an inline keyboard.
type KeyboardContent struct {
	Rows []KeyboardRow `json:"rows"`
}

// KeyboardRow is one row of buttons.
type KeyboardRow struct {
	Buttons []Button `json:"buttons"`
}

// Button is one keyboard button.
type Button struct {
	ID         string           `json:"id,omitempty"`
	RenderData ButtonRenderData `json:"render_data"`
	Action     ButtonAction     `json:"action"`
}

// ButtonRenderData is how a button looks.
type ButtonRenderData struct {
	Label        string `json:"label"`
	VisitedLabel string `json:"visited_label"`
	Style        int    `json:"style"` // 0 grey outline, 1 blue outline
}

// Button action types.
const (
	ActionLink     = 0 // open Data as a URL
	ActionCallback = 1 // send an INTERACTION_CREATE event
	ActionCommand  = 2 // put Data in the input box
)

// ButtonAction is what a click does.
type ButtonAction struct {
	Type          int              `json:"type"`
	Permission    ButtonPermission `json:"permission"`
	Data          string           `json:"data"`
	Reply         bool             `json:"reply,omitempty"`
	Enter         bool             `json:"enter,omitempty"`
	Anchor        int              `json:"anchor,omitempty"`
	UnsupportTips string           `json:"unsupport_tips,omitempty"`
}

// ButtonPermission is who may click: Type 0 the listed users, 1 admins
// only, 2 everyone, 3 the listed roles.
type ButtonPermission struct {
	Type           int      `json:"type"`
	SpecifyUserIDs []string `json:"specify_user_ids,omitempty"`
	SpecifyRoleIDs []string `json:"specify_role_ids,omitempty"`
}

// MessageArk is an ark (template 23, 24 or 37) message.
type MessageArk struct {
	TemplateID int     `json:"template_id"`
	KV         []ArkKV `json:"kv"`
}

// ArkKV is one ark key, with a value or a list of objects.
type ArkKV struct {
	Key   string   `json:"key"`
	Value string   `json:"value,omitempty"`
	Obj   []ArkObj `json:"obj,omitempty"`
}

// ArkObj is one object of an ark list.
type ArkObj struct {
	ObjKV []ArkObjKV `json:"obj_kv"`
}

// ArkObjKV is one key of an ark object.
type ArkObjKV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// MessageEmbed is an embed (channel and DM only).
type MessageEmbed struct {
	Title     string          `json:"title,omitempty"`
	Prompt    string          `json:"prompt,omitempty"`
	Thumbnail *EmbedThumbnail `json:"thumbnail,omitempty"`
	Fields    []EmbedField    `json:"fields,omitempty"`
}

// EmbedThumbnail is an embed's picture.
type EmbedThumbnail struct {
	URL string `json:"url"`
}

// EmbedField is one line of an embed.
type EmbedField struct {
	Name string `json:"name"`
}

// MessageMedia is rich media sent as msg_type 7: the FileInfo of an
// upload to the same kind of target (a c2c upload serves c2c only, a group
// upload groups only).
type MessageMedia struct {
	FileInfo string `json:"file_info"`
}

// MessageReference quotes an earlier message.
type MessageReference struct {
	MessageID             string `json:"message_id"`
	IgnoreGetMessageError bool   `json:"ignore_get_message_error,omitempty"`
}

// Text returns a text message.
func Text(content string) *Message { return &Message{Content: content} }

// Markdown returns a native markdown message.
func Markdown(content string) *Message {
	return &Message{Markdown: &MessageMarkdown{Content: content}}
}

// MarkdownTemplate returns a markdown message built from a template.
func MarkdownTemplate(templateID string, params ...MarkdownParams) *Message {
	return &Message{Markdown: &MessageMarkdown{CustomTemplateID: templateID, Params: params}}
}

// Ark returns an ark message.
func Ark(a *MessageArk) *Message { return &Message{Ark: a} }

// Embed returns an embed message (channel and DM only).
func Embed(e *MessageEmbed) *Message { return &Message{Embed: e} }

// Media returns a rich-media message (c2c and group) for an uploaded
// file's FileInfo.
func Media(fileInfo string) *Message { return &Message{Media: &MessageMedia{FileInfo: fileInfo}} }

// WithKeyboard sets the keyboard and returns m.
func (m *Message) WithKeyboard(k *MessageKeyboard) *Message { m.Keyboard = k; return m }

// v2Body is the JSON body of a c2c or group message.
type v2Body struct {
	MsgType          MsgType           `json:"msg_type"`
	Content          string            `json:"content,omitempty"`
	Markdown         *MessageMarkdown  `json:"markdown,omitempty"`
	Keyboard         *MessageKeyboard  `json:"keyboard,omitempty"`
	Ark              *MessageArk       `json:"ark,omitempty"`
	Media            *MessageMedia     `json:"media,omitempty"`
	MessageReference *MessageReference `json:"message_reference,omitempty"`
	MsgID            string            `json:"msg_id,omitempty"`
	EventID          string            `json:"event_id,omitempty"`
	MsgSeq           int               `json:"msg_seq,omitempty"`
}

// channelBody is the JSON body of a channel or DM message.
type channelBody struct {
	Content          string            `json:"content,omitempty"`
	Embed            *MessageEmbed     `json:"embed,omitempty"`
	Ark              *MessageArk       `json:"ark,omitempty"`
	MessageReference *MessageReference `json:"message_reference,omitempty"`
	Image            string            `json:"image,omitempty"`
	MsgID            string            `json:"msg_id,omitempty"`
	EventID          string            `json:"event_id,omitempty"`
	Markdown         *MessageMarkdown  `json:"markdown,omitempty"`
	Keyboard         *MessageKeyboard  `json:"keyboard,omitempty"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidMessage}, args...)...)
}

// validate checks m for a target kind.
func (m *Message) validate(k Kind) error {
	if m.MsgID != "" && m.EventID != "" {
		return invalid("both msg_id and event_id are set")
	}
	if m.MsgSeq < 0 || m.MsgSeq > FreshSeqMax {
		return invalid("msg_seq %d is not in 0..%d", m.MsgSeq, FreshSeqMax)
	}
	if md := m.Markdown; md != nil {
		if md.Content != "" && md.CustomTemplateID != "" {
			return invalid("markdown has both content and a template id")
		}
		if md.Content == "" && md.CustomTemplateID == "" {
			return invalid("markdown has neither content nor a template id")
		}
	}
	if kb := m.Keyboard; kb != nil {
		if (kb.ID == "") == (kb.Content == nil) {
			return invalid("keyboard needs exactly one of id and content")
		}
		if kb.Content != nil {
			if len(kb.Content.Rows) > 5 {
				return invalid("keyboard has %d rows, at most 5 are allowed", len(kb.Content.Rows))
			}
			for i, r := range kb.Content.Rows {
				if len(r.Buttons) > 5 {
					return invalid("keyboard row %d has %d buttons, at most 5 are allowed", i+1, len(r.Buttons))
				}
			}
		}
	}
	if m.Media != nil && m.Media.FileInfo == "" {
		return invalid("media has no file_info")
	}
	switch k {
	case KindC2C, KindGroup:
		if m.Embed != nil {
			return invalid("embed is not available for %s messages", k)
		}
		if m.Image != "" {
			return invalid("image URLs are for channel and DM messages; upload the file and send Media")
		}
		if m.Content == "" && m.Markdown == nil && m.Ark == nil && m.Media == nil {
			return invalid("the message is empty")
		}
	case KindChannel, KindDM:
		if m.Media != nil {
			return invalid("media (file_info) is for c2c and group messages; send Image with a URL")
		}
		if m.MsgType != 0 {
			return invalid("%s messages have no msg_type", k)
		}
		if m.MsgSeq != 0 {
			return invalid("%s messages have no msg_seq", k)
		}
		if m.Content == "" && m.Embed == nil && m.Ark == nil && m.Image == "" && m.Markdown == nil {
			return invalid("the message is empty")
		}
	default:
		return invalid("unknown target kind %q", k)
	}
	return nil
}

// msgType derives the c2c/group msg_type.
func (m *Message) msgType() MsgType {
	switch {
	case m.MsgType != 0:
		return m.MsgType
	case m.Media != nil:
		return MsgTypeMedia
	case m.Markdown != nil:
		return MsgTypeMarkdown
	case m.Ark != nil:
		return MsgTypeArk
	}
	return MsgTypeText
}

// body encodes m for kind k with the given msg_seq (c2c/group only).
func (m *Message) body(k Kind, seq int) ([]byte, error) {
	if k == KindChannel || k == KindDM {
		return json.Marshal(channelBody{
			Content: m.Content, Embed: m.Embed, Ark: m.Ark, MessageReference: m.MessageReference,
			Image: m.Image, MsgID: m.MsgID, EventID: m.EventID, Markdown: m.Markdown, Keyboard: m.Keyboard,
		})
	}
	b := v2Body{
		MsgType: m.msgType(), Content: m.Content, Markdown: m.Markdown, Keyboard: m.Keyboard,
		Ark: m.Ark, Media: m.Media, MessageReference: m.MessageReference,
		MsgID: m.MsgID, EventID: m.EventID, MsgSeq: seq,
	}
	if b.MsgType == MsgTypeMedia && b.Content == "" {
		// The platform's documentation asks for a non-empty content with
		// media, "for example a space".
		b.Content = " "
	}
	return json.Marshal(b)
}
