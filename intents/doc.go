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
// bring (protocol.md Part B §7). [DefaultLevels] gives the openclaw plugin's
// three intent levels, the fallback ladder a client steps down when the
// gateway rejects the intents it asked for (§11.2).
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
