//go:build !race

package load_test

import "testing"

func skipUnderRace(*testing.T) {}
