// Package wire holds the QQ Bot gateway's wire types: opcodes, the frame
// envelope, the payloads of HELLO, IDENTIFY, RESUME and READY, the close
// codes, the HTTP bodies of the token and gateway endpoints, and the typed
// bodies of the message events.
//
// Both the client (package client) and the fake gateway (package
// gatewaytest) encode and decode through these types, so a change to the
// protocol is made in one place. The package has no dependencies and does no
// I/O. Every field follows the official QQ Bot docs or, where they say
// nothing, what the platform is seen to send and the public SDKs decode.
package wire
