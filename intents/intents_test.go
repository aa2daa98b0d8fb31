package intents

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValues(t *testing.T) {
	t.Parallel()
	// The bits the official docs give (docs/protocol.md, "Intents").
	want := map[Set]uint32{
		Guilds: 1, GuildMembers: 2, GuildMessages: 512, GuildMessageReactions: 1024,
		DirectMessage: 4096, GroupAndC2CEvent: 33554432, Interaction: 67108864,
		MessageAudit: 134217728, ForumsEvent: 268435456, AudioAction: 536870912,
		PublicGuildMessages: 1073741824,
		OpenForumsEvent:     1 << 18, AudioOrLiveChannelMember: 1 << 19, EnterAIO: 1 << 23,
	}
	for s, v := range want {
		assert.Equal(t, v, uint32(s), s.String())
	}
	assert.Equal(t, uint32(1174409216), uint32(FullIntents))
}

func TestTableInBitOrder(t *testing.T) {
	t.Parallel()
	var union Set
	for i, in := range table {
		if i > 0 {
			assert.Greater(t, in.bit, table[i-1].bit, in.name)
		}
		assert.Equal(t, 1, popcount(in.bit), in.name)
		assert.Equal(t, strings.ToLower(in.name), in.name)
		union |= in.bit
	}
	assert.Equal(t, known, union)
}

func popcount(s Set) int {
	n := 0
	for ; s != 0; s &= s - 1 {
		n++
	}
	return n
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Set
	}{
		{"public_guild_messages, group_and_c2c_event", PublicGuildMessages | GroupAndC2CEvent},
		{"1107300352", PublicGuildMessages | DirectMessage | GroupAndC2CEvent},
		{"guilds|guild_members", Guilds | GuildMembers},
		{"  PUBLIC_GUILD_MESSAGES | Direct_Message ", PublicGuildMessages | DirectMessage},
		{"public_messages", GroupAndC2CEvent},
		{"at_messages", PublicGuildMessages},
		{"group-and-c2c-event", GroupAndC2CEvent},
		{"guilds,,guilds,", Guilds},
		{"guilds,4096", Guilds | DirectMessage},
		{"0", 0},
		{"none", 0},
		{"4294967295", ^Set(0)},
		{"interaction,message_audit,forums_event,audio_action,guild_messages,guild_message_reactions",
			Interaction | MessageAudit | ForumsEvent | AudioAction | GuildMessages | GuildMessageReactions},
		{"enter_aio,open_forums_event,audio_or_live_channel_member", EnterAIO | OpenForumsEvent | AudioOrLiveChannelMember},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	_, err := Parse("guilds, bogus_intent")
	require.ErrorIs(t, err, ErrUnknownIntent)
	assert.Contains(t, err.Error(), `"bogus_intent"`)

	_, err = Parse(" , |")
	require.ErrorIs(t, err, ErrEmpty)
	_, err = Parse("")
	require.ErrorIs(t, err, ErrEmpty)

	_, err = Parse("4294967296")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "4294967296")
}

func TestString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "0", Set(0).String())
	assert.Equal(t, "guilds", Guilds.String())
	assert.Equal(t, "direct_message,group_and_c2c_event,public_guild_messages", Set(1107300352).String())
	assert.Equal(t, "guilds,12", (Guilds | 1<<2 | 1<<3).String())
	assert.Equal(t, "2147483648", Set(1<<31).String())
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []Set{0, Guilds, FullIntents, known, ^Set(0), 1 << 31, 1<<2 | Guilds} {
		got, err := Parse(s.String())
		require.NoError(t, err, s.String())
		assert.Equal(t, s, got)
	}
	for _, in := range table {
		got, err := Parse(in.name)
		require.NoError(t, err)
		assert.Equal(t, in.bit, got)
	}
}

func TestNamesHasUnknown(t *testing.T) {
	t.Parallel()
	s := PublicGuildMessages | Guilds | 1<<5
	assert.Equal(t, []string{"guilds", "public_guild_messages"}, s.Names())
	assert.Equal(t, Set(1<<5), s.Unknown())
	assert.True(t, s.Has(Guilds))
	assert.True(t, s.Has(Guilds|PublicGuildMessages))
	assert.False(t, s.Has(Guilds|DirectMessage))
	assert.True(t, s.Has(0))
	assert.Empty(t, Set(0).Names())
}

func TestEventsAndIntentOf(t *testing.T) {
	t.Parallel()
	assert.Equal(t, []string{"AT_MESSAGE_CREATE", "PUBLIC_MESSAGE_DELETE"}, PublicGuildMessages.Events())
	assert.Contains(t, GroupAndC2CEvent.Events(), "GROUP_AT_MESSAGE_CREATE")
	assert.Nil(t, Set(0).Events())

	seen := map[string]Set{}
	for _, in := range table {
		require.NotEmpty(t, in.events, in.name)
		for _, e := range in.events {
			_, dup := seen[e]
			require.False(t, dup, "event %s listed twice", e)
			seen[e] = in.bit
			got, ok := IntentOf(e)
			require.True(t, ok, e)
			assert.Equal(t, in.bit, got, e)
		}
	}
	for e, want := range map[string]Set{
		"C2C_MESSAGE_CREATE": GroupAndC2CEvent, "DIRECT_MESSAGE_CREATE": DirectMessage,
		"INTERACTION_CREATE": Interaction, "MESSAGE_CREATE": GuildMessages, "FRIEND_ADD": GroupAndC2CEvent,
	} {
		got, ok := IntentOf(e)
		require.True(t, ok, e)
		assert.Equal(t, want, got, e)
	}
	for _, e := range []string{"READY", "RESUMED", "GROUP_MESSAGE_CREATE", "", "at_message_create"} {
		_, ok := IntentOf(e)
		assert.False(t, ok, e)
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	type config struct {
		Intents Set `json:"intents"`
	}
	out, err := json.Marshal(config{Intents: PublicGuildMessages | GroupAndC2CEvent})
	require.NoError(t, err)
	assert.JSONEq(t, `{"intents":"group_and_c2c_event,public_guild_messages"}`, string(out))

	var c config
	require.NoError(t, json.Unmarshal(out, &c))
	assert.Equal(t, PublicGuildMessages|GroupAndC2CEvent, c.Intents)

	c = config{}
	require.NoError(t, json.Unmarshal([]byte(`{"intents":1107300352}`), &c))
	assert.Equal(t, Set(1107300352), c.Intents)

	c = config{Intents: Guilds}
	require.NoError(t, json.Unmarshal([]byte(`{"intents":null}`), &c))
	assert.Equal(t, Guilds, c.Intents)

	err = json.Unmarshal([]byte(`{"intents":"nope"}`), &c)
	require.ErrorIs(t, err, ErrUnknownIntent)
	require.Error(t, json.Unmarshal([]byte(`{"intents":-1}`), &c))
	require.Error(t, json.Unmarshal([]byte(`{"intents":true}`), &c))

	var s Set
	require.NoError(t, s.UnmarshalText([]byte("public_messages")))
	assert.Equal(t, GroupAndC2CEvent, s)
	require.Error(t, s.UnmarshalText([]byte("x")))
	assert.Equal(t, GroupAndC2CEvent, s, "a failed decode leaves the value alone")
}

func TestDefaultLevels(t *testing.T) {
	t.Parallel()
	levels := DefaultLevels()
	// Index = the record's intentLevelIndex. Level 0 asks for interactions
	// (1<<26), without which INTERACTION_CREATE (button clicks) never
	// arrives.
	require.Len(t, levels, 4)
	assert.Equal(t, Level{"full", 1174409216}, levels[0])
	assert.True(t, levels[0].Intents.Has(Interaction))
	assert.Equal(t, FullIntents, levels[0].Intents)
	assert.Equal(t, Level{"full-no-interaction", 1107300352}, levels[1])
	assert.Equal(t, Level{"group+channel", 1107296256}, levels[2])
	assert.Equal(t, Level{"channel-only", 1073741826}, levels[3])
	for i := 1; i < len(levels); i++ {
		assert.True(t, levels[i-1].Intents.Has(levels[i].Intents&^GuildMembers), "level %d is a reduction of level %d", i, i-1)
	}

	levels[0].Intents = 0
	assert.Equal(t, Set(1174409216), DefaultLevels()[0].Intents, "each call returns a fresh slice")
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", "0", "none", "guilds", "public_guild_messages, group_and_c2c_event", "1107300352",
		"guilds|4096", " AT_MESSAGES ", "public-messages", "bogus", "4294967296", "-1", ",,|",
		"guilds,12", "\x00", "0x10", "ＧＵＩＬＤＳ",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		back, err := Parse(s.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %v, but Parse(%q) failed: %v", in, s, s.String(), err)
		}
		if back != s {
			t.Fatalf("round trip of %q: %d -> %q -> %d", in, s, s.String(), back)
		}
		if got := strings.Join(s.Names(), ","); s.Unknown() == 0 && s != 0 && got != s.String() {
			t.Fatalf("Names %q and String %q disagree", got, s.String())
		}
	})
}
