//go:build race

package main

// raceEnabled: the longest end-to-end tests skip under the race detector (ten times slower)
// and .ci/run runs them once without it; the other tests keep the pipeline under -race.
const raceEnabled = true
