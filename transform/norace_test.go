//go:build !race

package transform

import "testing"

func skipUnderRace(*testing.T) {}
