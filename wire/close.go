package wire

import "strconv"

// CloseCode is a WebSocket close status as the QQ gateway uses it.
type CloseCode int

// Close codes of RFC 6455 that matter to the gateway.
const (
	CloseNormal         CloseCode = 1000
	CloseGoingAway      CloseCode = 1001
	CloseNoStatus       CloseCode = 1005 // no close frame status
	CloseAbnormal       CloseCode = 1006 // connection dropped without a close frame
	CloseServiceRestart CloseCode = 1012
)

// Close codes of the QQ gateway, from the official docs and the public SDKs.
const (
	CloseUnknownError         CloseCode = 4000
	CloseInvalidOpcode        CloseCode = 4001
	CloseDecodeError          CloseCode = 4002
	CloseNotAuthenticated     CloseCode = 4003
	CloseAuthenticationFailed CloseCode = 4004
	CloseAlreadyAuthenticated CloseCode = 4005
	CloseInvalidSession       CloseCode = 4006
	CloseInvalidSeq           CloseCode = 4007
	CloseRateLimited          CloseCode = 4008
	CloseSessionTimedOut      CloseCode = 4009
	CloseInvalidShard         CloseCode = 4010
	CloseShardingRequired     CloseCode = 4011
	CloseInvalidVersion       CloseCode = 4012
	CloseInvalidIntents       CloseCode = 4013
	CloseDisallowedIntents    CloseCode = 4014
	CloseInternalFirst        CloseCode = 4900 // 4900–4913: internal error, re-identify
	CloseResetByResume        CloseCode = 4902
	CloseCreateSessionError   CloseCode = 4903
	CloseInternalLast         CloseCode = 4913
	CloseBotOffline           CloseCode = 4914 // offline, sandbox connections only
	CloseBotBanned            CloseCode = 4915
)

// String gives the code with its meaning, e.g. "4009 session timed out".
func (c CloseCode) String() string {
	name := ""
	switch c {
	case CloseNormal:
		name = "normal closure"
	case CloseGoingAway:
		name = "going away"
	case CloseNoStatus:
		name = "no status"
	case CloseAbnormal:
		name = "abnormal closure"
	case CloseServiceRestart:
		name = "service restart"
	case CloseUnknownError:
		name = "unknown error"
	case CloseInvalidOpcode:
		name = "invalid opcode"
	case CloseDecodeError:
		name = "decode error"
	case CloseNotAuthenticated:
		name = "not authenticated"
	case CloseAuthenticationFailed:
		name = "authentication failed"
	case CloseAlreadyAuthenticated:
		name = "already authenticated"
	case CloseInvalidSession:
		name = "invalid session"
	case CloseInvalidSeq:
		name = "invalid seq"
	case CloseRateLimited:
		name = "rate limited"
	case CloseSessionTimedOut:
		name = "session timed out"
	case CloseInvalidShard:
		name = "invalid shard"
	case CloseShardingRequired:
		name = "sharding required"
	case CloseInvalidVersion:
		name = "invalid version"
	case CloseInvalidIntents:
		name = "invalid intents"
	case CloseDisallowedIntents:
		name = "intents not permitted"
	case CloseResetByResume:
		name = "reset by resume"
	case CloseCreateSessionError:
		name = "create session error"
	case CloseBotOffline:
		name = "bot offline (sandbox only)"
	case CloseBotBanned:
		name = "bot banned"
	default:
		if c >= CloseInternalFirst && c <= CloseInternalLast {
			name = "internal error"
		}
	}
	if name == "" {
		return strconv.Itoa(int(c))
	}
	return strconv.Itoa(int(c)) + " " + name
}
