//go:build race

package apisim

// raceScale shrinks the slowest oracle tests under the race detector, which slows rendering
// tenfold; they check shapes and equality, not concurrency.
const raceScale = 0.4
