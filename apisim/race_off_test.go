//go:build !race

package apisim

const raceScale = 1.0
