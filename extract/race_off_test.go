//go:build !race

package extract_test

import "testing"

func skipUnderRace(*testing.T) {}
