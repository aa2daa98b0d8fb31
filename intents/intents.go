package intents

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Set is a mask of gateway intents, as sent in IDENTIFY's "intents" field.
// The zero value is the empty set, which asks for no events.
type Set uint32

// Official intents, as the QQ Bot docs number them. The comment names the
// events each one brings; [Set.Events] lists them exactly.
const (
	// Guilds: GUILD_CREATE/UPDATE/DELETE, CHANNEL_CREATE/UPDATE/DELETE.
	// Granted by default.
	Guilds Set = 1 << 0
	// GuildMembers: GUILD_MEMBER_ADD/UPDATE/REMOVE. Granted by default.
	GuildMembers Set = 1 << 1
	// GuildMessages: MESSAGE_CREATE, MESSAGE_DELETE. Private-domain bots only.
	GuildMessages Set = 1 << 9
	// GuildMessageReactions: MESSAGE_REACTION_ADD/REMOVE.
	GuildMessageReactions Set = 1 << 10
	// DirectMessage: DIRECT_MESSAGE_CREATE/DELETE.
	DirectMessage Set = 1 << 12
	// GroupAndC2CEvent: group @-messages, C2C messages, friend and group
	// membership events. botpy calls it "public_messages".
	GroupAndC2CEvent Set = 1 << 25
	// Interaction: INTERACTION_CREATE (button clicks, C2C quick-menu
	// items). Without it a bot never sees its buttons being clicked.
	Interaction Set = 1 << 26
	// MessageAudit: MESSAGE_AUDIT_PASS/REJECT.
	MessageAudit Set = 1 << 27
	// ForumsEvent: FORUM_* events. Private-domain bots only.
	ForumsEvent Set = 1 << 28
	// AudioAction: AUDIO_START/FINISH, AUDIO_ON_MIC/OFF_MIC.
	AudioAction Set = 1 << 29
	// PublicGuildMessages: AT_MESSAGE_CREATE, PUBLIC_MESSAGE_DELETE. The old
	// docs call it AT_MESSAGES. Granted by default.
	PublicGuildMessages Set = 1 << 30
)

// Intents outside the official table. They are declared by public SDKs but
// not documented by the platform; use them only if you know the gateway
// honours them for your bot.
const (
	// OpenForumsEvent is botpy's OPEN_FORUMS_EVENT (public-domain forum
	// events, OPEN_FORUM_*). Not official.
	OpenForumsEvent Set = 1 << 18
	// AudioOrLiveChannelMember is botpy's AUDIO_OR_LIVE_CHANNEL_MEMBER
	// (members entering and leaving audio or live channels). Not official.
	AudioOrLiveChannelMember Set = 1 << 19
	// EnterAIO is botgo's IntentEnterAIO, for the ENTER_AIO event. Not
	// official.
	EnterAIO Set = 1 << 23
)

// Common masks.
const (
	// FullIntents is the mask of the openclaw QQ plugin from v1.6 and of
	// openclaw core: public guild messages, direct messages, groups and
	// C2C, and interactions (1174409216). It is the top level of
	// [DefaultLevels], so a client asks for it by default. The Node SDK's
	// FULL_INTENTS also adds Guilds and GuildMembers (1174409219).
	FullIntents = PublicGuildMessages | DirectMessage | GroupAndC2CEvent | Interaction
)

// ErrUnknownIntent is wrapped by the error [Parse] returns for a name it does
// not know; the error text names the offending word.
var ErrUnknownIntent = errors.New("unknown intent")

// ErrEmpty is returned by [Parse] for a string with no intent in it. Write
// "0" or "none" for the empty set.
var ErrEmpty = errors.New("empty intent list")

// intent describes one bit: its canonical name and the events it brings.
type intent struct {
	bit    Set
	name   string
	events []string
}

// table lists every named bit in bit order. It is never modified.
var table = [...]intent{
	{Guilds, "guilds", []string{
		"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE",
		"CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE",
	}},
	{GuildMembers, "guild_members", []string{
		"GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE",
	}},
	{GuildMessages, "guild_messages", []string{
		"MESSAGE_CREATE", "MESSAGE_DELETE",
	}},
	{GuildMessageReactions, "guild_message_reactions", []string{
		"MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE",
	}},
	{DirectMessage, "direct_message", []string{
		"DIRECT_MESSAGE_CREATE", "DIRECT_MESSAGE_DELETE",
	}},
	{OpenForumsEvent, "open_forums_event", []string{
		"OPEN_FORUM_THREAD_CREATE", "OPEN_FORUM_THREAD_UPDATE", "OPEN_FORUM_THREAD_DELETE",
		"OPEN_FORUM_POST_CREATE", "OPEN_FORUM_POST_DELETE",
		"OPEN_FORUM_REPLY_CREATE", "OPEN_FORUM_REPLY_DELETE",
	}},
	{AudioOrLiveChannelMember, "audio_or_live_channel_member", []string{
		"AUDIO_OR_LIVE_CHANNEL_MEMBER_ENTER", "AUDIO_OR_LIVE_CHANNEL_MEMBER_EXIT",
	}},
	{EnterAIO, "enter_aio", []string{
		"ENTER_AIO",
	}},
	{GroupAndC2CEvent, "group_and_c2c_event", []string{
		"C2C_MESSAGE_CREATE", "FRIEND_ADD", "FRIEND_DEL", "C2C_MSG_REJECT", "C2C_MSG_RECEIVE",
		"GROUP_AT_MESSAGE_CREATE", "GROUP_ADD_ROBOT", "GROUP_DEL_ROBOT",
		"GROUP_MSG_REJECT", "GROUP_MSG_RECEIVE",
		"SUBSCRIBE_MESSAGE_STATUS", // botgo maps it here; not in the official table
	}},
	{Interaction, "interaction", []string{
		"INTERACTION_CREATE",
	}},
	{MessageAudit, "message_audit", []string{
		"MESSAGE_AUDIT_PASS", "MESSAGE_AUDIT_REJECT",
	}},
	{ForumsEvent, "forums_event", []string{
		"FORUM_THREAD_CREATE", "FORUM_THREAD_UPDATE", "FORUM_THREAD_DELETE",
		"FORUM_POST_CREATE", "FORUM_POST_DELETE",
		"FORUM_REPLY_CREATE", "FORUM_REPLY_DELETE",
		"FORUM_PUBLISH_AUDIT_RESULT",
	}},
	{AudioAction, "audio_action", []string{
		"AUDIO_START", "AUDIO_FINISH", "AUDIO_ON_MIC", "AUDIO_OFF_MIC",
	}},
	{PublicGuildMessages, "public_guild_messages", []string{
		"AT_MESSAGE_CREATE", "PUBLIC_MESSAGE_DELETE",
	}},
}

// known is the union of every named bit.
const known = Guilds | GuildMembers | GuildMessages | GuildMessageReactions | DirectMessage |
	OpenForumsEvent | AudioOrLiveChannelMember | EnterAIO |
	GroupAndC2CEvent | Interaction | MessageAudit | ForumsEvent | AudioAction | PublicGuildMessages

// aliases are extra spellings accepted by Parse, after lower-casing and
// turning '-' into '_'. Canonical names are looked up in table.
var aliases = map[string]Set{
	"none":             0,
	"public_messages":  GroupAndC2CEvent,    // botpy
	"group_and_c2c":    GroupAndC2CEvent,    // openclaw plugin constant
	"at_messages":      PublicGuildMessages, // old docs
	"guild_at_message": PublicGuildMessages, // botgo IntentGuildAtMessage
	"direct_messages":  DirectMessage,       // botgo IntentDirectMessages
	"forums":           ForumsEvent,
	"open_forum_event": OpenForumsEvent, // the docs' name of the event group, for botpy's bit
}

// lookup returns the bit for a normalised name.
func lookup(name string) (Set, bool) {
	for _, in := range table {
		if in.name == name {
			return in.bit, true
		}
	}
	s, ok := aliases[name]
	return s, ok
}

// Parse reads an intent set from names or numbers separated by ',' or '|'.
// Names are the lower-case doc names ("public_guild_messages"); case,
// surrounding spaces and '-' for '_' do not matter, and a few aliases are
// accepted ("public_messages" for group_and_c2c_event, "at_messages" for
// public_guild_messages, "none" for the empty set). A part may also be a
// decimal number, which is or-ed in as it is, so Parse("1107300352") works
// and every [Set.String] output parses back to the same Set.
//
// An unknown name gives an error wrapping [ErrUnknownIntent] that quotes the
// name; a string with no parts at all gives [ErrEmpty].
func Parse(s string) (Set, error) {
	var out Set
	parts := 0
	for part := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == '|' }) {
		word := strings.TrimSpace(part)
		if word == "" {
			continue
		}
		parts++
		if word[0] >= '0' && word[0] <= '9' {
			n, err := strconv.ParseUint(word, 10, 32)
			if err != nil {
				return 0, fmt.Errorf("parse intents: bad number %q: %w", word, err)
			}
			out |= Set(n)
			continue
		}
		name := strings.ReplaceAll(strings.ToLower(word), "-", "_")
		bit, ok := lookup(name)
		if !ok {
			return 0, fmt.Errorf("parse intents: %w %q", ErrUnknownIntent, word)
		}
		out |= bit
	}
	if parts == 0 {
		return 0, fmt.Errorf("parse intents: %w", ErrEmpty)
	}
	return out, nil
}

// String gives the names of the set's bits in bit order, joined by ','
// with no spaces, e.g. "direct_message,group_and_c2c_event". Bits without a
// name follow as one decimal number. The empty set is "0". [Parse] reads
// every result back to the same Set.
func (s Set) String() string {
	if s == 0 {
		return "0"
	}
	var b strings.Builder
	for _, in := range table {
		if s&in.bit != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(in.name)
		}
	}
	if rest := s.Unknown(); rest != 0 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(rest), 10))
	}
	return b.String()
}

// Names gives the names of the set's named bits in bit order. Bits without
// a name are left out; see [Set.Unknown]. The result is a new slice.
func (s Set) Names() []string {
	names := make([]string, 0, bits.OnesCount32(uint32(s&known)))
	for _, in := range table {
		if s&in.bit != 0 {
			names = append(names, in.name)
		}
	}
	return names
}

// Unknown gives the bits of s that have no name in this package.
func (s Set) Unknown() Set { return s &^ known }

// Has reports whether s contains every bit of o. Has(0) is true.
func (s Set) Has(o Set) bool { return s&o == o }

// Events gives the event types the set's intents bring, in bit order and
// then in the order of the docs, e.g. [AT_MESSAGE_CREATE
// PUBLIC_MESSAGE_DELETE] for [PublicGuildMessages]. READY and RESUMED are
// always delivered and are not listed. The result is a new slice.
func (s Set) Events() []string {
	var events []string
	for _, in := range table {
		if s&in.bit != 0 {
			events = append(events, in.events...)
		}
	}
	return events
}

// IntentOf gives the intent that brings the event type eventType (upper
// case, as in the dispatch's "t"). It reports false for events that need no
// intent (READY, RESUMED) and for events whose intent is not documented,
// such as GROUP_MESSAGE_CREATE.
func IntentOf(eventType string) (Set, bool) {
	for _, in := range table {
		for _, e := range in.events {
			if e == eventType {
				return in.bit, true
			}
		}
	}
	return 0, false
}

// MarshalText encodes the set as [Set.String] does.
func (s Set) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes the set as [Parse] does.
func (s *Set) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalJSON accepts a JSON string, decoded as [Parse] does, or a JSON
// number, taken as the mask itself. Encoding uses [Set.MarshalText], so a
// Set is written as a string of names.
func (s *Set) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var str string
		if err := json.Unmarshal(data, &str); err != nil {
			return fmt.Errorf("decode intents: %w", err)
		}
		return s.UnmarshalText([]byte(str))
	}
	var n uint32
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("decode intents: %w", err)
	}
	*s = Set(n)
	return nil
}
