// Package tokenfile keeps OAuth tokens in an owner-only file that a crash never leaves torn or
// half-written: every save writes a temporary file in the same folder, fsyncs it, renames it
// over the old one and fsyncs the folder, so the file holds either the old tokens or the new
// ones. A lock file beside it (flock) lets processes that share the file take turns.
package tokenfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"
	"golang.org/x/oauth2"
)

// Tokens is what the file holds. The refresh token is the credential that matters: HighLevel
// rotates it on every use, so the file must always hold the newest one.
type Tokens struct {
	RefreshToken string    `json:"refresh_token"`
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"` // of the access token
	UserType     string    `json:"user_type,omitempty"`
	CompanyID    string    `json:"company_id,omitempty"`
	Scope        string    `json:"scope,omitempty"`
	Saved        time.Time `json:"saved"`
}

// FromOAuth2 copies tok (and the user type, company and scope of its response) into Tokens.
func FromOAuth2(tok *oauth2.Token) Tokens {
	str := func(k string) string { s, _ := tok.Extra(k).(string); return s }
	return Tokens{RefreshToken: tok.RefreshToken, AccessToken: tok.AccessToken, TokenType: tok.TokenType, Expiry: tok.Expiry,
		UserType: str("userType"), CompanyID: str("companyId"), Scope: str("scope")}
}

// OAuth2 is the access token as an oauth2.Token.
func (t Tokens) OAuth2() *oauth2.Token {
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken, Expiry: t.Expiry}
}

// ErrNotExist is returned by Load when there is no token file yet.
var ErrNotExist = errors.New("no token file")

// Load reads the token file at path. A file that others can read is refused (its tokens must
// be treated as leaked), as is one without a refresh token.
func Load(path string) (Tokens, error) {
	var t Tokens
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, fmt.Errorf("%w at %s", ErrNotExist, path)
	}
	if err != nil {
		return t, fmt.Errorf("reading token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return t, fmt.Errorf("token file %s can be read by other users (mode %v): run `chmod 600 %s`, and as its tokens may have leaked, authorize again", path, fi.Mode().Perm(), path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return t, fmt.Errorf("reading token file: %w", err)
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		// Never quote the content: it holds secrets.
		return Tokens{}, fmt.Errorf("token file %s is not valid JSON (was it edited by hand?)", path)
	}
	if t.RefreshToken == "" {
		return Tokens{}, fmt.Errorf("token file %s holds no refresh_token", path)
	}
	return t, nil
}

// Save replaces the token file at path with t, durably (see the package comment), owner-only.
func Save(path string, t Tokens) error {
	if t.RefreshToken == "" {
		return errors.New("saving tokens: no refresh token")
	}
	t.Saved = time.Now().UTC()
	raw, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving tokens: %w", err)
	}
	// Not renameio.WriteFile: it would keep the mode of an existing file that was loosened.
	pf, err := renameio.NewPendingFile(path, renameio.WithPermissions(0o600), renameio.WithStaticPermissions(0o600), renameio.WithTempDir(dir))
	if err != nil {
		return fmt.Errorf("saving tokens to %s: %w", path, err)
	}
	defer pf.Cleanup()
	if _, err := pf.Write(append(raw, '\n')); err != nil {
		return fmt.Errorf("saving tokens to %s: %w", path, err)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("saving tokens to %s: %w", path, err)
	}
	// The rename is durable only once the folder's entry is on disk.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("saving tokens: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("saving tokens: syncing %s: %w", dir, err)
	}
	return nil
}

// Lock takes the exclusive lock of the token file at path (the file path+".lock"), waiting
// until it is free or ctx ends; the returned func releases it.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("locking the token file: %w", err)
	}
	l := flock.New(path+".lock", flock.SetPermissions(0o600))
	ok, err := l.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("locking the token file %s.lock: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("locking the token file %s.lock: %w", path, ctx.Err())
	}
	return func() { _ = l.Unlock() }, nil
}
