package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const serveSection = `
serve:
  every: 5m
  users:
    - {name: metabase, password: "${MB_PASSWORD}"}
`

func TestParse_ServeSection(t *testing.T) {
	f, err := Parse([]byte(good+serveSection), env(map[string]string{"AD_SECRET": "a", "HL_SECRET": "h", "MB_PASSWORD": "mb-password-1"}))
	if err != nil {
		t.Fatal(err)
	}
	sv := f.Serve
	if sv == nil || sv.Listen != DefaultServeListen || sv.HTTP != DefaultServeHTTP || sv.Every.Std() != 5*time.Minute {
		t.Fatalf("serve: %+v", sv)
	}
	if len(sv.Users) != 1 || sv.Users[0].Password != "mb-password-1" {
		t.Fatalf("users (with ${ENV} expanded): %+v", sv.Users)
	}
	if err := f.ValidateServe(); err != nil {
		t.Fatal(err)
	}
	// Without a serve section: the file is valid for sync, and serve names the missing key.
	f, err = Parse([]byte(good), env(map[string]string{"AD_SECRET": "a", "HL_SECRET": "h"}))
	if err != nil {
		t.Fatal(err)
	}
	var ce *Error
	if err := f.ValidateServe(); !errors.As(err, &ce) || ce.Key != "serve.users" {
		t.Fatalf("no serve section: %v", err)
	}
}

func TestParse_ServeErrorsNameTheKey(t *testing.T) {
	envs := env(map[string]string{"AD_SECRET": "a", "HL_SECRET": "h"})
	for _, tc := range []struct{ section, key string }{
		{"serve:\n  listen: nonsense\n", "serve.listen"},
		{"serve:\n  listen: 0.0.0.0:5433\n", "serve.listen"},
		{"serve:\n  every: 5m\n  cron: '*/5 * * * *'\n", "serve.cron"},
		{"serve:\n  cron: '* *'\n", "serve.cron"},
		{"serve:\n  tls_cert: /x.crt\n", "serve.tls_key"},
		{"serve:\n  require_tls: true\n", "serve.require_tls"},
		{"serve:\n  users: [{name: a, password: short}]\n", "serve.users[0].password"},
		{"serve:\n  users: [{name: a, password: long-enough}, {name: a, password: long-enough}]\n", "serve.users[1].name"},
		{"serve:\n  users: [{name: a, password: '${NOPE}'}]\n", "serve.users[0].password"},
		{"serve:\n  bogus: 1\n", "bogus"},
	} {
		_, err := Parse([]byte(good+tc.section), envs)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tc.key {
			t.Errorf("%q: want an error naming %s, got %v", tc.section, tc.key, err)
		} else if !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: %v", tc.section, err)
		}
	}
	// A non-loopback address is fine with TLS or an explicit opt-out.
	if _, err := Parse([]byte(good+"serve:\n  listen: 0.0.0.0:5433\n  allow_plaintext: true\n"), envs); err != nil {
		t.Fatal(err)
	}
}
