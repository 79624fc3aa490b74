package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const hlOnly = `
sources:
  highlevel:
    company_id: c
    app_id: a
`

func TestParse_HighLevelAuthModes(t *testing.T) {
	lookup := env(map[string]string{"HL_SECRET": "s", "HL_PRIVATE_TOKEN": "pit"})
	withKeys := func(keys string) string { return hlOnly + keys + "\n" }
	ok := []struct{ name, yaml, auth, tokenFile string }{
		{"default is client_credentials", withKeys("    client_id: i\n    client_secret: ${HL_SECRET}"), HLAuthClientCredentials, ""},
		{"refresh_token with defaults", withKeys("    auth: refresh_token\n    client_id: i\n    client_secret: ${HL_SECRET}"), HLAuthRefreshToken, DefaultHLTokenFile},
		{"private_token without client credentials", withKeys("    auth: private_token\n    private_token: ${HL_PRIVATE_TOKEN}"), HLAuthPrivateToken, ""},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse([]byte(c.yaml), lookup)
			if err != nil {
				t.Fatal(err)
			}
			hl := f.Sources.HighLevel
			if hl.Auth != c.auth || hl.TokenFile != c.tokenFile {
				t.Fatalf("auth %q token_file %q", hl.Auth, hl.TokenFile)
			}
			if c.auth == HLAuthRefreshToken && (hl.AuthorizeURL != DefaultHLAuthorizeURL || hl.Scopes != DefaultHLScopes) {
				t.Fatalf("refresh_token defaults: %+v", hl)
			}
		})
	}
	bad := []struct{ name, keys, key, hint string }{
		{"unknown mode", "    auth: oauth\n    client_id: i\n    client_secret: s", "sources.highlevel.auth", "refresh_token or private_token"},
		{"refresh_token needs the client secret", "    auth: refresh_token\n    client_id: i", "sources.highlevel.client_secret", "auth: refresh_token"},
		{"private_token needs the token", "    auth: private_token", "sources.highlevel.private_token", "${ENV_VAR}"},
		{"a private token that would be ignored", "    client_id: i\n    client_secret: s\n    private_token: p", "sources.highlevel.private_token", "auth: private_token"},
		{"client credentials that would be ignored", "    auth: private_token\n    private_token: p\n    client_secret: s", "sources.highlevel.client_secret", "auth is private_token"},
		{"a token file that would be ignored", "    auth: private_token\n    private_token: p\n    token_file: t.json", "sources.highlevel.token_file", "only with auth: refresh_token"},
		{"a bad redirect_uri", "    auth: refresh_token\n    client_id: i\n    client_secret: s\n    redirect_uri: localhost/cb", "sources.highlevel.redirect_uri", "registered"},
		{"authorize_url over plain http", "    auth: refresh_token\n    client_id: i\n    client_secret: s\n    authorize_url: http://marketplace.example.com/x", "sources.highlevel.authorize_url", "https"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(withKeys(c.keys)), lookup)
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(err.Error(), c.hint) {
				t.Fatalf("error %v, want key %s and hint %q", err, c.key, c.hint)
			}
		})
	}
}

func TestLoad_TokenFileIsRelativeToTheConfigFolder(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ line, want string }{
		{"", filepath.Join(dir, DefaultHLTokenFile)},
		{"    token_file: secrets/hl.json\n", filepath.Join(dir, "secrets", "hl.json")},
		{"    token_file: /var/lib/syncer/hl.json\n", "/var/lib/syncer/hl.json"},
	} {
		p := filepath.Join(dir, "syncer.yaml")
		y := hlOnly + "    auth: refresh_token\n    client_id: i\n    client_secret: s\n" + c.line
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Sources.HighLevel.TokenFile; got != c.want {
			t.Fatalf("token_file %q, want %q", got, c.want)
		}
	}
}
