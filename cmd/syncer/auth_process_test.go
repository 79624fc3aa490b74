package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/internal/tokenfile"
	"github.com/marketsync/marketsync/load"
)

// Real processes, SIGKILLed at random moments while every run must refresh (each starts with
// expired access tokens): after each kill the token file must hold a refresh token HighLevel
// still accepts, or, if the kill fell between HighLevel's answer and the save (the one window
// no client can close), the next run must say so and name `syncer auth highlevel`.
func TestKill_RefreshTokenSurvivesSIGKILLAtRandomMoments(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // mostly waiting (rate budgets, backoff, kills): the long tests overlap
	bin := binary(t)
	s := startSim(t, apisim.Config{Seed: 8, Scale: 300, Locations: 4, Profile: "fast", TokenTTL: time.Hour,
		InsertRate: 1e-12, UpdateRate: 1e-12, DeleteRate: 1e-12})
	setSecrets(t)
	dir := t.TempDir()
	cfg := refreshConfig(t, dir, s, testRedirect)
	tokenPath := filepath.Join(dir, "tokens", "hl.json")
	if code, out, errOut, _ := authorize(t, cfg, wholeURL); code != exitOK {
		t.Fatalf("auth: %d\n%s\n%s", code, out, errOut)
	}
	sync := func() *exec.Cmd {
		return exec.Command(bin, "sync", "--config", cfg, "--streams", "charges", "--progress", "never", "--log-level", "debug")
	}
	grants := func() int { return s.Snapshot().Requests["highlevel.token"]["200"] }
	var outputs bytes.Buffer
	rng := rand.New(rand.NewPCG(14, 14))
	const runs = 9
	killed, lost, refreshedThenKilled := 0, 0, 0
	for i := 0; i < runs; i++ {
		s.Advance(2 * time.Hour) // every access token is dead: this run must refresh
		before := grants()
		cmd := sync()
		cmd.Stdout, cmd.Stderr = &outputs, &outputs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Two runs in three are killed just after HighLevel answered the refresh (within 0-2 ms
		// or 0-40 ms: in the save, or just after it), the third at a random moment.
		kill := make(chan struct{})
		go func() {
			defer close(kill)
			if i%3 == 2 {
				time.Sleep(time.Duration(30+rng.IntN(1200)) * time.Millisecond)
				return
			}
			for deadline := time.Now().Add(20 * time.Second); grants() == before && time.Now().Before(deadline); {
				time.Sleep(100 * time.Microsecond)
			}
			time.Sleep(time.Duration(rng.IntN([]int{2000, 40000}[i%3])) * time.Microsecond)
		}()
		select {
		case <-kill:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			if err := <-done; err == nil {
				break // it had finished
			}
			killed++
			if grants() > before {
				refreshedThenKilled++
			}
		case err := <-done:
			<-kill
			if err != nil {
				t.Fatalf("run %d failed: %v\n%s", i, err, outputs.String())
			}
		}
		saved, err := tokenfile.Load(tokenPath)
		if err != nil {
			t.Fatalf("after run %d the token file is unusable: %v", i, err)
		}
		if s.RefreshTokenValid(saved.RefreshToken) {
			continue
		}
		// Lost in the window: the next run must detect it and say what to do; then re-authorize.
		lost++
		out, err := sync().CombinedOutput()
		outputs.Write(out)
		if err == nil || !strings.Contains(string(out), "refused the refresh token stored in") || !strings.Contains(string(out), "syncer auth highlevel") {
			t.Fatalf("a lost refresh token was not reported with the way out (%v):\n%s", err, out)
		}
		if code, out, errOut, _ := authorize(t, cfg, wholeURL); code != exitOK {
			t.Fatalf("re-auth: %d\n%s\n%s", code, out, errOut)
		}
	}
	if refreshedThenKilled < 3 {
		t.Fatalf("%d runs killed, %d after their refresh: the kills did not exercise rotation", killed, refreshedThenKilled)
	}
	s.Advance(2 * time.Hour)
	if out, err := sync().CombinedOutput(); err != nil {
		t.Fatalf("final sync: %v\n%s", err, out)
	}
	db, err := load.OpenReadOnly(context.Background(), filepath.Join(dir, "w.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if diff, err := simcheck.CompareRows(context.Background(), db, s, []string{"charges"}, simcheck.RowOptions{}); err != nil || diff != "" {
		t.Fatalf("charges differ from the source (%v):\n%s", err, diff)
	}
	for _, secret := range s.IssuedTokens() {
		if bytes.Contains(outputs.Bytes(), []byte(secret)) {
			t.Fatal("a token appears in the debug logs")
		}
	}
	t.Logf("%d of %d runs killed (%d after HighLevel rotated the token); %d refresh tokens lost in the answer-to-save window, each reported", killed, runs, refreshedThenKilled, lost)
}
