// Package event is qqgate's transport-neutral event pipeline: the [Event]
// a transport hands to the program, the [Handler] that receives it, and
// [Mux], which routes events by type and decodes the message events.
//
// The gateway client (package client) produces events; so can any other
// transport. A sender (package openapi) replies to them. Neither depends on
// the other: both depend on this package and on package wire.
//
// Every event is available raw (type, seq, envelope id, the raw JSON of d);
// the typed accessors ([Event.Message], [Event.Interaction], [Event.Friend],
// [Event.GroupRobot], [Event.MessageDelete], [Event.MessageAudit],
// [Event.Ready]) decode d into the wire types and never modify it.
package event
