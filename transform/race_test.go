//go:build race

package transform

import "testing"

// skipUnderRace skips a test that checks no concurrency and is slow under the race detector;
// .ci/run runs every test that calls it once without -race (see .ci/long-tests).
func skipUnderRace(t *testing.T) {
	t.Helper()
	t.Skip("long test: .ci/run runs it without -race")
}
