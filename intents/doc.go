// Package intents names the QQ Bot gateway's intent bits: the mask an
// IDENTIFY asks for, which decides which events the gateway delivers.
//
// A [Set] is a bit mask. It prints as the lower-case names of the official
// docs ("public_guild_messages,group_and_c2c_event") and parses from names,
// aliases or a decimal number, so configuration files can say either:
//
//	s, err := intents.Parse("public_guild_messages, group_and_c2c_event")
//	s, err := intents.Parse("1107296256")
//
// [Set.MarshalText] and [Set.UnmarshalText] make a Set usable directly in
// JSON, YAML or TOML configs; [Set.UnmarshalJSON] also accepts a bare
// number.
//
// [Set.Events] and [IntentOf] map between intents and the event types they
// bring, as the official docs list them.
//
// # Default intents
//
// [DefaultLevels] is the fallback ladder a client steps down when the
// gateway rejects the intents it asked for. Its top level, the one asked
// for by default, is [FullIntents] (1174409216): public guild messages,
// direct messages, groups and C2C, and [Interaction]. That is what the
// current openclaw QQ plugin always sends. Interaction (1<<26) is the bit
// that brings INTERACTION_CREATE: a bot that asks without it never sees its
// buttons being clicked, and the clicks spin on the user's client until
// they time out. The lower levels drop interactions, then direct messages,
// then groups and C2C.
//
// # Sources
//
// The official bits come from the QQ Bot docs, which match botgo and botpy.
// [EnterAIO], [OpenForumsEvent] and [AudioOrLiveChannelMember] are not in
// the official table; they are here because public SDKs declare them, and
// their doc comments say so.
//
// # Concurrency
//
// A Set is a plain integer: safe to copy and share. Every function in the
// package is pure and safe for concurrent use. The package has no mutable
// state.
package intents
