package wire

// Typed bodies of the message events (protocol.md Part B §6). Fields that a
// sender omits stay at their zero value; the raw JSON stays available to
// the program for anything not modelled here.

// Event type names of the message events.
const (
	EventAtMessageCreate      = "AT_MESSAGE_CREATE"
	EventMessageCreate        = "MESSAGE_CREATE"
	EventDirectMessageCreate  = "DIRECT_MESSAGE_CREATE"
	EventC2CMessageCreate     = "C2C_MESSAGE_CREATE"
	EventGroupAtMessageCreate = "GROUP_AT_MESSAGE_CREATE"
	EventInteractionCreate    = "INTERACTION_CREATE"
	EventGroupAddRobot        = "GROUP_ADD_ROBOT"
	EventGroupDelRobot        = "GROUP_DEL_ROBOT"
	EventFriendAdd            = "FRIEND_ADD"
	EventFriendDel            = "FRIEND_DEL"
)

// Author is the sender of a message. Guild messages fill ID, Username,
// Avatar and Bot; C2C messages fill UserOpenID; group messages fill
// MemberOpenID.
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

// Attachment is a file attached to a message.
type Attachment struct {
	ContentType string `json:"content_type,omitempty"`
	Filename    string `json:"filename,omitempty"`
	Height      int    `json:"height,omitempty"`
	Width       int    `json:"width,omitempty"`
	Size        int64  `json:"size,omitempty"`
	URL         string `json:"url,omitempty"`
}

// Message is the body of AT_MESSAGE_CREATE, MESSAGE_CREATE,
// DIRECT_MESSAGE_CREATE, C2C_MESSAGE_CREATE and GROUP_AT_MESSAGE_CREATE.
type Message struct {
	ID           string       `json:"id"`
	Content      string       `json:"content"`
	Timestamp    string       `json:"timestamp,omitempty"`
	Author       Author       `json:"author"`
	ChannelID    string       `json:"channel_id,omitempty"`
	GuildID      string       `json:"guild_id,omitempty"`
	GroupOpenID  string       `json:"group_openid,omitempty"`
	GroupID      string       `json:"group_id,omitempty"`
	SrcGuildID   string       `json:"src_guild_id,omitempty"`
	Member       *Member      `json:"member,omitempty"`
	Attachments  []Attachment `json:"attachments,omitempty"`
	Seq          int64        `json:"seq,omitempty"`
	SeqInChannel string       `json:"seq_in_channel,omitempty"`
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

// InteractionData is the data of an interaction (a button click).
type InteractionData struct {
	Type     int `json:"type"`
	Resolved struct {
		ButtonData string `json:"button_data,omitempty"`
		ButtonID   string `json:"button_id,omitempty"`
		UserID     string `json:"user_id,omitempty"`
		MessageID  string `json:"message_id,omitempty"`
	} `json:"resolved"`
}

// GroupRobotEvent is the body of GROUP_ADD_ROBOT and GROUP_DEL_ROBOT.
type GroupRobotEvent struct {
	GroupOpenID    string `json:"group_openid"`
	OpMemberOpenID string `json:"op_member_openid"`
	Timestamp      int64  `json:"timestamp"`
}

// FriendEvent is the body of FRIEND_ADD and FRIEND_DEL.
type FriendEvent struct {
	OpenID    string `json:"openid"`
	Timestamp int64  `json:"timestamp"`
}
