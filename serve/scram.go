package serve

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it: the password never crosses the
// wire, and the server keeps only the derived keys.
const scramIterations = 4096

type scramCreds struct {
	salt      []byte
	storedKey []byte
	serverKey []byte
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

func newScramCreds(password string) (scramCreds, error) {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, 32)
	if err != nil {
		return scramCreds{}, fmt.Errorf("deriving SCRAM keys: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return scramCreds{salt: salt, storedKey: stored[:], serverKey: hmacSHA256(salted, "Server Key")}, nil
}

// scramExchange is the server side of one SCRAM conversation.
type scramExchange struct {
	creds           scramCreds
	known           bool // false: an unknown user, answered with fake credentials so the failure looks the same
	clientFirstBare string
	serverFirst     string
	nonce           string
}

var errAuth = errors.New("password authentication failed")

// first takes client-first-message and returns server-first-message.
func (x *scramExchange) first(msg []byte) (string, error) {
	m := string(msg)
	// gs2 header: n,, or y,, (no channel binding); p=... would require binding we do not offer.
	var rest string
	switch {
	case strings.HasPrefix(m, "n,"), strings.HasPrefix(m, "y,"):
		i := strings.Index(m[2:], ",")
		if i < 0 {
			return "", errors.New("malformed SCRAM client-first-message")
		}
		rest = m[2+i+1:]
	default:
		return "", errors.New("SCRAM channel binding is not supported; connect with channel_binding=disable or prefer")
	}
	x.clientFirstBare = rest
	var cnonce string
	for _, attr := range strings.Split(rest, ",") {
		if v, ok := strings.CutPrefix(attr, "r="); ok {
			cnonce = v
		}
	}
	if cnonce == "" {
		return "", errors.New("malformed SCRAM client-first-message: no nonce")
	}
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	x.nonce = cnonce + base64.RawStdEncoding.EncodeToString(b)
	x.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", x.nonce, base64.StdEncoding.EncodeToString(x.creds.salt), scramIterations)
	return x.serverFirst, nil
}

// final takes client-final-message, verifies the proof and returns server-final-message.
func (x *scramExchange) final(msg []byte) (string, error) {
	m := string(msg)
	i := strings.LastIndex(m, ",p=")
	if i < 0 {
		return "", errors.New("malformed SCRAM client-final-message")
	}
	withoutProof, proofB64 := m[:i], m[i+3:]
	var nonce string
	for _, attr := range strings.Split(withoutProof, ",") {
		if v, ok := strings.CutPrefix(attr, "r="); ok {
			nonce = v
		}
	}
	if nonce != x.nonce {
		return "", errAuth
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != sha256.Size {
		return "", errAuth
	}
	authMessage := x.clientFirstBare + "," + x.serverFirst + "," + withoutProof
	sig := hmacSHA256(x.creds.storedKey, authMessage)
	clientKey := make([]byte, len(proof))
	for k := range proof {
		clientKey[k] = proof[k] ^ sig[k]
	}
	got := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(got[:], x.creds.storedKey) != 1 || !x.known {
		return "", errAuth
	}
	return "v=" + base64.StdEncoding.EncodeToString(hmacSHA256(x.creds.serverKey, authMessage)), nil
}
