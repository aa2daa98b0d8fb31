package intents

// Level is one rung of an intent fallback ladder: a name for logs and
// records, and the mask IDENTIFY sends at that rung.
type Level struct {
	Name    string
	Intents Set
}

// DefaultLevels returns the openclaw QQ plugin's intent ladder (protocol.md
// Part B §11.2), from most to least: index 0 "full" (1107300352: public
// guild messages, direct messages, groups and C2C), 1 "group+channel"
// (1107296256: no direct messages) and 2 "channel-only" (1073741826: public
// guild messages and guild members, both granted by default). The index is
// the plugin's intentLevelIndex in the shared session record.
//
// Each call returns a new slice, so callers may modify it.
func DefaultLevels() []Level {
	return []Level{
		{Name: "full", Intents: PublicGuildMessages | DirectMessage | GroupAndC2CEvent},
		{Name: "group+channel", Intents: PublicGuildMessages | GroupAndC2CEvent},
		{Name: "channel-only", Intents: PublicGuildMessages | GuildMembers},
	}
}
