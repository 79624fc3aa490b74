//go:build !race

package apisim

import "testing"

func skipUnderRace(*testing.T) {}
