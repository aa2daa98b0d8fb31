package gatewaytest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/qqgate/qqgate/wire"
)

var chinaTime = time.FixedZone("CST", 8*3600)

// EmitMessage emits eventType with a realistic body built from the wire
// types, with ids unique within the server: AT_MESSAGE_CREATE,
// MESSAGE_CREATE and DIRECT_MESSAGE_CREATE (a guild [wire.Message]),
// C2C_MESSAGE_CREATE, GROUP_AT_MESSAGE_CREATE and GROUP_MESSAGE_CREATE (a
// [wire.Message] with open ids, message_scene and, for groups, a mention
// of the bot), INTERACTION_CREATE ([wire.Interaction], a button click in a
// group), GROUP_ADD_ROBOT, GROUP_DEL_ROBOT, GROUP_MSG_RECEIVE and
// GROUP_MSG_REJECT ([wire.GroupRobotEvent]), FRIEND_ADD, FRIEND_DEL,
// C2C_MSG_RECEIVE and C2C_MSG_REJECT ([wire.FriendEvent]),
// MESSAGE_DELETE, PUBLIC_MESSAGE_DELETE and DIRECT_MESSAGE_DELETE
// ([wire.MessageDelete]), MESSAGE_AUDIT_PASS and MESSAGE_AUDIT_REJECT
// ([wire.MessageAudited]). The envelope id is "<TYPE>:<n>". Any other type
// gives ErrUnknownEvent.
func (s *Session) EmitMessage(eventType string) (seq uint64, err error) {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.closed {
		return 0, ErrClosed
	}
	n := s.srv.nextUniqueLocked()
	body, err := messageBody(eventType, s.appID, s.user, n, s.srv.now())
	if err != nil {
		return 0, err
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("encode %s body: %w", eventType, err)
	}
	return s.srv.emitLocked(s, eventType, eventType+":"+strconv.FormatUint(n, 10), raw, false), nil
}

// openID is a 32-hex-digit open id, like the platform's.
func openID(kind byte, n uint64) string {
	return fmt.Sprintf("%c%031X", kind, n)
}

func messageBody(eventType, appID string, bot wire.User, n uint64, now time.Time) (any, error) {
	ts := now.In(chinaTime).Format(time.RFC3339)
	num := strconv.FormatUint(n, 10)
	guild := func(content string) wire.Message {
		return wire.Message{
			ID:        "08f3fb8b8f9ef7e2f1e10110a" + num,
			Content:   content,
			Timestamp: ts,
			Author: wire.Author{
				ID:       strconv.FormatUint(1442800000000000000+n, 10),
				Username: "user" + num,
				Avatar:   "https://thirdqq.qlogo.cn/g?b=oidb&k=" + num,
			},
			ChannelID:    strconv.FormatUint(600000+n, 10),
			GuildID:      strconv.FormatUint(7000000000000000000+n, 10),
			Member:       &wire.Member{JoinedAt: "2023-11-06T13:37:18+08:00", Roles: []string{"1"}},
			Seq:          int64(n),
			SeqInChannel: num,
		}
	}
	unix := now.Unix()
	switch eventType {
	case wire.EventAtMessageCreate:
		return guild("<@!" + bot.ID + "> hello " + num), nil
	case wire.EventMessageCreate:
		return guild("hello " + num), nil
	case wire.EventDirectMessageCreate:
		m := guild("direct hello " + num)
		m.SrcGuildID = m.GuildID
		m.GuildID = strconv.FormatUint(8000000000000000000+n, 10)
		m.Member = &wire.Member{JoinedAt: m.Member.JoinedAt}
		return m, nil
	case wire.EventC2CMessageCreate:
		return wire.Message{
			ID:           "ROBOT1.0_c2c." + num,
			Content:      "hello " + num,
			Timestamp:    ts,
			Author:       wire.Author{ID: openID('C', n), UserOpenID: openID('C', n), UnionOpenID: openID('U', n)},
			MessageScene: &wire.MessageScene{Source: "default"},
		}, nil
	case wire.EventGroupAtMessageCreate, wire.EventGroupMessageCreate:
		content := " hello " + num // GROUP_AT_MESSAGE_CREATE strips the mention
		if eventType == wire.EventGroupMessageCreate {
			content = "<@" + openID('B', 1) + "> hello " + num
		}
		return wire.Message{
			ID:           "ROBOT1.0_group." + num,
			Content:      content,
			Timestamp:    ts,
			Author:       wire.Author{ID: openID('M', n), MemberOpenID: openID('M', n), UnionOpenID: openID('U', n)},
			GroupOpenID:  openID('G', n),
			GroupID:      openID('G', n),
			Mentions:     []wire.Mention{{Scope: "single", ID: openID('B', 1), MemberOpenID: openID('B', 1), Nickname: bot.Username, Bot: true, IsYou: true}},
			MessageScene: &wire.MessageScene{Source: "default"},
		}, nil
	case wire.EventInteractionCreate:
		in := wire.Interaction{
			ID:                "interaction." + num,
			Type:              11,
			ChatType:          1,
			Scene:             "group",
			Timestamp:         ts,
			GroupOpenID:       openID('G', n),
			GroupMemberOpenID: openID('M', n),
			ApplicationID:     appID,
			Version:           1,
		}
		in.Data.Type = 11
		in.Data.Resolved.ButtonData = "data-" + num
		in.Data.Resolved.ButtonID = "button-" + num
		in.Data.Resolved.UserID = openID('M', n)
		return in, nil
	case wire.EventGroupAddRobot, wire.EventGroupDelRobot, wire.EventGroupMsgReceive, wire.EventGroupMsgReject:
		return wire.GroupRobotEvent{GroupOpenID: openID('G', n), OpMemberOpenID: openID('M', n), Timestamp: unix}, nil
	case wire.EventFriendAdd, wire.EventFriendDel, wire.EventC2CMsgReceive, wire.EventC2CMsgReject:
		return wire.FriendEvent{OpenID: openID('C', n), Timestamp: unix}, nil
	case wire.EventMessageDelete, wire.EventPublicMessageDelete, wire.EventDirectMessageDelete:
		m := guild("")
		deleted := wire.Message{ID: m.ID, ChannelID: m.ChannelID, GuildID: m.GuildID, Author: wire.Author{ID: m.Author.ID, Username: m.Author.Username}}
		if eventType == wire.EventDirectMessageDelete {
			deleted.GuildID = strconv.FormatUint(8000000000000000000+n, 10)
		}
		return wire.MessageDelete{Message: deleted, OpUser: wire.Author{ID: m.Author.ID}}, nil
	case wire.EventMessageAuditPass, wire.EventMessageAuditReject:
		a := wire.MessageAudited{
			AuditID:    "audit." + num,
			GuildID:    strconv.FormatUint(7000000000000000000+n, 10),
			ChannelID:  strconv.FormatUint(600000+n, 10),
			AuditTime:  ts,
			CreateTime: ts,
		}
		if eventType == wire.EventMessageAuditPass {
			a.MessageID = "08f3fb8b8f9ef7e2f1e10110a" + num
			a.SeqInChannel = num
		}
		return a, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEvent, eventType)
}
