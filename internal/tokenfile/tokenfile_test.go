package tokenfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLoad_OwnerOnlyAtomicAndStrict(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "hl.json")
	if _, err := Load(p); !errors.Is(err, ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	want := Tokens{RefreshToken: "rt-1", AccessToken: "at-1", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour).UTC().Truncate(time.Second), CompanyID: "C"}
	if err := Save(p, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode().Perm(), err)
	}
	got, err := Load(p)
	if err != nil || got.RefreshToken != want.RefreshToken || got.AccessToken != want.AccessToken || !got.Expiry.Equal(want.Expiry) || got.CompanyID != "C" || got.Saved.IsZero() {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// Replacing keeps owner-only even if the old file was loosened, and leaves no temp file.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a group/world-readable file: %v", err)
	}
	want.RefreshToken = "rt-2"
	if err := Save(p, want); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(p); err != nil || got.RefreshToken != "rt-2" {
		t.Fatalf("after replace: %+v %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("save left files behind: %v", entries)
	}
	// Garbage or a file without a refresh token is refused without quoting it.
	if err := os.WriteFile(p, []byte("secret-garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || strings.Contains(err.Error(), "secret-garbage") {
		t.Fatalf("garbage: %v", err)
	}
	if err := os.WriteFile(p, []byte(`{"access_token":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "no refresh_token") {
		t.Fatalf("no refresh token: %v", err)
	}
	if err := Save(p, Tokens{}); err == nil {
		t.Fatal("saved tokens without a refresh token")
	}
}

func TestLock_ExcludesAnotherHolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hl.json")
	unlock, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, p); err == nil {
		t.Fatal("a second holder got the lock")
	}
	unlock()
	unlock2, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
}
