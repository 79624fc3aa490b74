//go:build race

package transform

// raceEnabled: the race detector slows the reference decoding about fivefold, so the property
// test runs a third of its records (the normal run keeps its full count).
const raceEnabled = true
