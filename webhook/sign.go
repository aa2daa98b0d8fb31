package webhook

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
)

// ErrEmptySecret is returned for an empty app secret: the platform's key
// derivation repeats the secret until it is 32 bytes long, which never
// ends for an empty one.
var ErrEmptySecret = errors.New("webhook: empty app secret")

// KeyFromSecret derives the bot's ed25519 key pair from its app secret, as
// the platform does: the seed is the secret repeated until it is at least
// 32 bytes long, then cut to 32 bytes.
func KeyFromSecret(secret string) (ed25519.PrivateKey, error) {
	if secret == "" {
		return nil, ErrEmptySecret
	}
	seed := secret
	for len(seed) < ed25519.SeedSize {
		seed += secret
	}
	return ed25519.NewKeyFromSeed([]byte(seed[:ed25519.SeedSize])), nil
}

// SignValidation answers the platform's callback URL validation (op 13):
// the hex ed25519 signature of eventTS followed by plainToken.
func SignValidation(key ed25519.PrivateKey, eventTS, plainToken string) string {
	return hex.EncodeToString(ed25519.Sign(key, []byte(eventTS+plainToken)))
}

// Sign signs a push as the platform does: the hex ed25519 signature of the
// timestamp header's value followed by the raw body. The fake platform in
// package gatewaytest uses it; a bot only verifies.
func Sign(key ed25519.PrivateKey, timestamp string, body []byte) string {
	msg := make([]byte, 0, len(timestamp)+len(body))
	msg = append(append(msg, timestamp...), body...)
	return hex.EncodeToString(ed25519.Sign(key, msg))
}

// Verify reports whether sigHex (the X-Signature-Ed25519 header) is pub's
// signature over timestamp (the X-Signature-Timestamp header) followed by
// the raw body. A signature that is not 128 hex digits is false.
func Verify(pub ed25519.PublicKey, sigHex, timestamp string, body []byte) bool {
	if len(sigHex) != 2*ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
		return false
	}
	sig, err := hex.DecodeString(strings.ToLower(sigHex))
	if err != nil {
		return false
	}
	msg := make([]byte, 0, len(timestamp)+len(body))
	msg = append(append(msg, timestamp...), body...)
	return ed25519.Verify(pub, msg, sig)
}
