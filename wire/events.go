package wire

// Typed bodies of the dispatch events a chatbot needs. Fields that a sender
// omits stay at their zero value; the raw JSON stays available to the
// program for anything not modelled here.

// Event type names of the typed events.
const (
	// EventAtMessageCreate: a guild message that @-mentions the bot.
	EventAtMessageCreate = "AT_MESSAGE_CREATE"
	// EventMessageCreate: any guild message (private-domain bots).
	EventMessageCreate = "MESSAGE_CREATE"
	// EventDirectMessageCreate: a guild direct message.
	EventDirectMessageCreate = "DIRECT_MESSAGE_CREATE"
	// EventC2CMessageCreate: a one-to-one (C2C) message.
	EventC2CMessageCreate = "C2C_MESSAGE_CREATE"
	// EventGroupAtMessageCreate: a group message that @-mentions the bot.
	EventGroupAtMessageCreate = "GROUP_AT_MESSAGE_CREATE"
	// EventGroupMessageCreate: any group message, delivered when a group
	// admin lets the bot receive all messages. Same body as
	// GROUP_AT_MESSAGE_CREATE; the content keeps any "<@…>" mention. Not in
	// the official docs, which also leave its intent unstated.
	EventGroupMessageCreate = "GROUP_MESSAGE_CREATE"
	// EventInteractionCreate: a button click or C2C quick-menu item.
	EventInteractionCreate = "INTERACTION_CREATE"

	// EventGroupAddRobot: the bot was added to a group.
	EventGroupAddRobot = "GROUP_ADD_ROBOT"
	// EventGroupDelRobot: the bot was removed from a group.
	EventGroupDelRobot = "GROUP_DEL_ROBOT"
	// EventGroupMsgReceive: a group turned the bot's active messages on.
	// The event id lets the bot send a passive message.
	EventGroupMsgReceive = "GROUP_MSG_RECEIVE"
	// EventGroupMsgReject: a group turned the bot's active messages off.
	EventGroupMsgReject = "GROUP_MSG_REJECT"
	// EventFriendAdd: a user added the bot.
	EventFriendAdd = "FRIEND_ADD"
	// EventFriendDel: a user removed the bot.
	EventFriendDel = "FRIEND_DEL"
	// EventC2CMsgReceive: a user turned the bot's active messages on. The
	// event id lets the bot send a passive message.
	EventC2CMsgReceive = "C2C_MSG_RECEIVE"
	// EventC2CMsgReject: a user turned the bot's active messages off.
	EventC2CMsgReject = "C2C_MSG_REJECT"

	// EventMessageDelete: a guild message was recalled (private-domain
	// bots).
	EventMessageDelete = "MESSAGE_DELETE"
	// EventPublicMessageDelete: a guild message that @-mentioned the bot
	// was recalled.
	EventPublicMessageDelete = "PUBLIC_MESSAGE_DELETE"
	// EventDirectMessageDelete: a guild direct message was recalled.
	EventDirectMessageDelete = "DIRECT_MESSAGE_DELETE"

	// EventMessageAuditPass: a message the bot sent passed the audit.
	EventMessageAuditPass = "MESSAGE_AUDIT_PASS"
	// EventMessageAuditReject: a message the bot sent failed the audit.
	EventMessageAuditReject = "MESSAGE_AUDIT_REJECT"
)

// Author is the sender of a message. Guild messages fill ID, Username,
// Avatar and Bot; C2C messages fill UserOpenID; group messages fill
// MemberOpenID. UnionOpenID identifies a user across the apps of one
// developer, when the platform sends it.
type Author struct {
	ID           string `json:"id,omitempty"`
	Username     string `json:"username,omitempty"`
	Avatar       string `json:"avatar,omitempty"`
	Bot          bool   `json:"bot,omitempty"`
	UserOpenID   string `json:"user_openid,omitempty"`
	MemberOpenID string `json:"member_openid,omitempty"`
	UnionOpenID  string `json:"union_openid,omitempty"`
}

// Member is the guild member info of a guild message.
type Member struct {
	JoinedAt string   `json:"joined_at,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Nick     string   `json:"nick,omitempty"`
}

// Attachment is a file attached to a message. Voice messages may carry
// VoiceWAVURL (the voice as WAV, so no SILK decoding is needed) and
// ASRReferText (the platform's own speech-to-text).
type Attachment struct {
	ContentType  string `json:"content_type,omitempty"`
	Filename     string `json:"filename,omitempty"`
	Height       int    `json:"height,omitempty"`
	Width        int    `json:"width,omitempty"`
	Size         int64  `json:"size,omitempty"`
	URL          string `json:"url,omitempty"`
	VoiceWAVURL  string `json:"voice_wav_url,omitempty"`
	ASRReferText string `json:"asr_refer_text,omitempty"`
}

// Mention is one entry of a message's mentions. Guild messages list users
// (ID, Username, Avatar, Bot). Group messages add Scope ("all" for
// @everyone, "single" otherwise), the open ids, Nickname and IsYou, which
// is true when the bot itself is mentioned.
type Mention struct {
	Scope        string `json:"scope,omitempty"`
	ID           string `json:"id,omitempty"`
	UserOpenID   string `json:"user_openid,omitempty"`
	MemberOpenID string `json:"member_openid,omitempty"`
	Nickname     string `json:"nickname,omitempty"`
	Username     string `json:"username,omitempty"`
	Avatar       string `json:"avatar,omitempty"`
	Bot          bool   `json:"bot,omitempty"`
	IsYou        bool   `json:"is_you,omitempty"`
}

// MessageScene says where a group or C2C message comes from. Source is
// "default" for an ordinary message. Ext holds "key=value" strings; a
// quoting message has "ref_msg_idx=…" (the quoted message) and "msg_idx=…"
// (its own index).
type MessageScene struct {
	Source string   `json:"source,omitempty"`
	Ext    []string `json:"ext,omitempty"`
}

// MessageReference is the message a guild message replies to.
type MessageReference struct {
	MessageID string `json:"message_id"`
}

// MsgElement is one element of a message's msg_elements: for a quoting
// message (MessageType 103), the quoted message. Elements may nest.
type MsgElement struct {
	MsgIdx      string       `json:"msg_idx,omitempty"`
	MessageType int          `json:"message_type,omitempty"`
	Content     string       `json:"content,omitempty"`
	Author      *Author      `json:"author,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	MsgElements []MsgElement `json:"msg_elements,omitempty"`
}

// MessageTypeQuote is the Message.MessageType of a message that quotes
// another; the quoted message is in MsgElements.
const MessageTypeQuote = 103

// Message is the body of AT_MESSAGE_CREATE, MESSAGE_CREATE,
// DIRECT_MESSAGE_CREATE, C2C_MESSAGE_CREATE, GROUP_AT_MESSAGE_CREATE and
// GROUP_MESSAGE_CREATE.
type Message struct {
	ID               string            `json:"id"`
	Content          string            `json:"content"`
	Timestamp        string            `json:"timestamp,omitempty"`
	EditedTimestamp  string            `json:"edited_timestamp,omitempty"`
	Author           Author            `json:"author"`
	ChannelID        string            `json:"channel_id,omitempty"`
	GuildID          string            `json:"guild_id,omitempty"`
	GroupOpenID      string            `json:"group_openid,omitempty"`
	GroupID          string            `json:"group_id,omitempty"`
	SrcGuildID       string            `json:"src_guild_id,omitempty"`
	Member           *Member           `json:"member,omitempty"`
	Attachments      []Attachment      `json:"attachments,omitempty"`
	Mentions         []Mention         `json:"mentions,omitempty"`
	MentionEveryone  bool              `json:"mention_everyone,omitempty"`
	MessageReference *MessageReference `json:"message_reference,omitempty"`
	MessageScene     *MessageScene     `json:"message_scene,omitempty"`
	MessageType      int               `json:"message_type,omitempty"`
	MsgElements      []MsgElement      `json:"msg_elements,omitempty"`
	Seq              int64             `json:"seq,omitempty"`
	SeqInChannel     string            `json:"seq_in_channel,omitempty"`
}

// Interaction is the body of INTERACTION_CREATE.
type Interaction struct {
	ID                string          `json:"id"`
	Type              int             `json:"type"`
	ChatType          int             `json:"chat_type,omitempty"`
	Scene             string          `json:"scene,omitempty"`
	Timestamp         string          `json:"timestamp,omitempty"`
	GuildID           string          `json:"guild_id,omitempty"`
	ChannelID         string          `json:"channel_id,omitempty"`
	GroupOpenID       string          `json:"group_openid,omitempty"`
	UserOpenID        string          `json:"user_openid,omitempty"`
	GroupMemberOpenID string          `json:"group_member_openid,omitempty"`
	ApplicationID     string          `json:"application_id,omitempty"`
	Version           int             `json:"version,omitempty"`
	Data              InteractionData `json:"data"`
}

// InteractionData is the data of an interaction. Type is 11 for a message
// button and 12 for a C2C quick-menu item, whose id is
// Resolved.FeatureID.
type InteractionData struct {
	Type     int `json:"type"`
	Resolved struct {
		ButtonData string `json:"button_data,omitempty"`
		ButtonID   string `json:"button_id,omitempty"`
		UserID     string `json:"user_id,omitempty"`
		FeatureID  string `json:"feature_id,omitempty"`
		MessageID  string `json:"message_id,omitempty"`
	} `json:"resolved"`
}

// GroupRobotEvent is the body of GROUP_ADD_ROBOT, GROUP_DEL_ROBOT,
// GROUP_MSG_RECEIVE and GROUP_MSG_REJECT.
type GroupRobotEvent struct {
	GroupOpenID    string `json:"group_openid"`
	OpMemberOpenID string `json:"op_member_openid"`
	Timestamp      int64  `json:"timestamp"`
}

// FriendEvent is the body of FRIEND_ADD, FRIEND_DEL, C2C_MSG_RECEIVE and
// C2C_MSG_REJECT.
type FriendEvent struct {
	OpenID    string `json:"openid"`
	Timestamp int64  `json:"timestamp"`
}

// MessageDelete is the body of MESSAGE_DELETE, PUBLIC_MESSAGE_DELETE and
// DIRECT_MESSAGE_DELETE: the recalled message (its ids and author) and
// who recalled it.
type MessageDelete struct {
	Message Message `json:"message"`
	OpUser  Author  `json:"op_user"`
}

// MessageAudited is the body of MESSAGE_AUDIT_PASS and
// MESSAGE_AUDIT_REJECT: the outcome of the audit of a message the bot
// sent. AuditID is the id the send call returned; MessageID is set when
// the message passed.
type MessageAudited struct {
	AuditID      string `json:"audit_id"`
	MessageID    string `json:"message_id,omitempty"`
	GuildID      string `json:"guild_id,omitempty"`
	ChannelID    string `json:"channel_id,omitempty"`
	AuditTime    string `json:"audit_time,omitempty"`
	CreateTime   string `json:"create_time,omitempty"`
	SeqInChannel string `json:"seq_in_channel,omitempty"`
}
