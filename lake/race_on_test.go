//go:build race

package lake

// raceEnabled: the longest tests skip under the race detector (ten times slower) and .ci/run
// runs them once without it.
const raceEnabled = true
