package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/qqgate/qqgate/wire"
)

// Kind is the kind of a message target.
type Kind string

// Target kinds.
const (
	KindC2C     Kind = "c2c"     // a QQ user: POST /v2/users/{openid}/messages
	KindGroup   Kind = "group"   // a QQ group: POST /v2/groups/{group_openid}/messages
	KindChannel Kind = "channel" // a guild text channel: POST /channels/{channel_id}/messages
	KindDM      Kind = "dm"      // a guild direct message: POST /dms/{guild_id}/messages
)

// Inbound is an event received from the platform, as much of it as a reply
// needs: the envelope's t and id, and its d.
type Inbound struct {
	// Type is the envelope's t, e.g. "C2C_MESSAGE_CREATE".
	Type string
	// ID is the envelope's id ("<t>:<opaque>"), the event_id of replies to
	// non-message events.
	ID string
	// Data is the envelope's d.
	Data json.RawMessage
}

// Target is where a reply goes and which inbound id makes it passive.
type Target struct {
	Kind Kind
	// ID is the user openid, group openid, channel id or DM guild id.
	ID string
	// MsgID or EventID (at most one) makes the send a passive reply.
	MsgID   string
	EventID string
	// At is when the inbound event was created (its d.timestamp), the
	// start of the reply window. Zero means unknown: the window then
	// counts from the first time the client sees the id.
	At time.Time
}

// inboundData holds every field of d that routing reads.
type inboundData struct {
	ID     string `json:"id"`
	Author struct {
		UserOpenID string `json:"user_openid"`
	} `json:"author"`
	GroupOpenID string          `json:"group_openid"`
	ChannelID   string          `json:"channel_id"`
	GuildID     string          `json:"guild_id"`
	OpenID      string          `json:"openid"`
	UserOpenID  string          `json:"user_openid"`
	Scene       string          `json:"scene"`
	ChatType    int             `json:"chat_type"`
	Timestamp   json.RawMessage `json:"timestamp"`
}

// RouteOf tells where a reply to in goes:
//
//	C2C_MESSAGE_CREATE                      c2c     d.author.user_openid  msg_id = d.id
//	GROUP_AT_MESSAGE_CREATE,
//	GROUP_MESSAGE_CREATE                    group   d.group_openid        msg_id = d.id
//	AT_MESSAGE_CREATE, MESSAGE_CREATE       channel d.channel_id          msg_id = d.id
//	DIRECT_MESSAGE_CREATE                   dm      d.guild_id            msg_id = d.id
//	INTERACTION_CREATE (group or c2c scene) group   d.group_openid        event_id = d.id
//	                                        c2c     d.user_openid         event_id = d.id
//	FRIEND_ADD, C2C_MSG_RECEIVE             c2c     d.openid              event_id = envelope id
//	GROUP_ADD_ROBOT, GROUP_MSG_RECEIVE      group   d.group_openid        event_id = envelope id
//
// Target.At is d.timestamp (RFC 3339, or Unix seconds) when present. Any
// other event, or one missing an id the route needs, gives an error
// wrapping ErrNoRoute. RouteOf is a pure function.
func RouteOf(in Inbound) (Target, error) {
	var d inboundData
	if len(bytes.TrimSpace(in.Data)) == 0 {
		return Target{}, fmt.Errorf("%w: %s has no data", ErrNoRoute, in.Type)
	}
	if err := json.Unmarshal(in.Data, &d); err != nil {
		return Target{}, fmt.Errorf("%w: decode %s data: %v", ErrNoRoute, in.Type, err)
	}
	at := parseTimestamp(d.Timestamp)
	var t Target
	switch in.Type {
	case wire.EventC2CMessageCreate:
		t = Target{Kind: KindC2C, ID: d.Author.UserOpenID, MsgID: d.ID}
	case wire.EventGroupAtMessageCreate, wire.EventGroupMessageCreate:
		t = Target{Kind: KindGroup, ID: d.GroupOpenID, MsgID: d.ID}
	case wire.EventAtMessageCreate, wire.EventMessageCreate:
		t = Target{Kind: KindChannel, ID: d.ChannelID, MsgID: d.ID}
	case wire.EventDirectMessageCreate:
		t = Target{Kind: KindDM, ID: d.GuildID, MsgID: d.ID}
	case wire.EventInteractionCreate:
		switch {
		case d.Scene == "group" || (d.Scene == "" && d.ChatType == 1):
			t = Target{Kind: KindGroup, ID: d.GroupOpenID, EventID: d.ID}
		case d.Scene == "c2c" || (d.Scene == "" && d.ChatType == 2):
			t = Target{Kind: KindC2C, ID: d.UserOpenID, EventID: d.ID}
		default:
			return Target{}, fmt.Errorf("%w: %s in scene %q (chat_type %d): only group and c2c interactions can be answered",
				ErrNoRoute, in.Type, d.Scene, d.ChatType)
		}
	case wire.EventFriendAdd, wire.EventC2CMsgReceive:
		t = Target{Kind: KindC2C, ID: d.OpenID, EventID: in.ID}
	case wire.EventGroupAddRobot, wire.EventGroupMsgReceive:
		t = Target{Kind: KindGroup, ID: d.GroupOpenID, EventID: in.ID}
	default:
		return Target{}, fmt.Errorf("%w: %q", ErrNoRoute, in.Type)
	}
	if t.ID == "" {
		return Target{}, fmt.Errorf("%w: %s has no %s id", ErrNoRoute, in.Type, t.Kind)
	}
	if t.MsgID == "" && t.EventID == "" {
		return Target{}, fmt.Errorf("%w: %s has no id to reply to", ErrNoRoute, in.Type)
	}
	t.At = at
	return t, nil
}

// parseTimestamp reads an RFC 3339 string, or Unix seconds (or
// milliseconds) as a number or a string. It returns zero for anything
// else.
func parseTimestamp(raw json.RawMessage) time.Time {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}
		}
		s = strings.TrimSpace(s)
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	if n > 1e12 { // milliseconds
		return time.UnixMilli(n)
	}
	return time.Unix(n, 0)
}
