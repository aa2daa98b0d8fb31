package intents

// Level is one rung of an intent fallback ladder: a name for logs and
// records, and the mask IDENTIFY sends at that rung.
type Level struct {
	Name    string
	Intents Set
}

// DefaultLevels returns the default intent ladder, from most to least.
// The index of a level is the intentLevelIndex of the session record
// shared with the openclaw QQ plugin:
//
//   - 0 "full" (1174409216, [FullIntents]): public guild messages, direct
//     messages, groups and C2C, and interactions. This is what the current
//     openclaw plugin always asks for. [Interaction] is needed for
//     INTERACTION_CREATE: without it button clicks are never delivered and
//     spin on the user's client until they time out.
//   - 1 "full-no-interaction" (1107300352): the same without interactions,
//     the plugin's former top level.
//   - 2 "group+channel" (1107296256): no direct messages either.
//   - 3 "channel-only" (1073741826): public guild messages and guild
//     members, both granted to every bot.
//
// A client steps one level down when the gateway rejects the intents it
// asked for before READY.
//
// Each call returns a new slice, so callers may modify it.
func DefaultLevels() []Level {
	return []Level{
		{Name: "full", Intents: FullIntents},
		{Name: "full-no-interaction", Intents: PublicGuildMessages | DirectMessage | GroupAndC2CEvent},
		{Name: "group+channel", Intents: PublicGuildMessages | GroupAndC2CEvent},
		{Name: "channel-only", Intents: PublicGuildMessages | GuildMembers},
	}
}
