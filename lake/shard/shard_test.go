package shard

import (
	"fmt"
	"testing"
)

func keys(n int) []string {
	var ks []string
	for i := range n {
		ks = append(ks, fmt.Sprintf("highlevel/location/loc-%05d", i), fmt.Sprintf("tenant-%d/appdirect/users", i))
	}
	return ks
}

// N shards cover every key exactly once, for every N, and spread the keys evenly.
func TestOwnsCoversEveryKeyExactlyOnce(t *testing.T) {
	ks := keys(5000)
	for _, n := range []int{1, 2, 3, 4, 7, 16, 64} {
		counts := make([]int, n)
		for i, k := range ks {
			o := Owner(k, n)
			counts[o]++
			if i%10 != 0 {
				continue // Owns is Owner == shard; check every shard's answer on a sample
			}
			owners := 0
			for s := range n {
				if Owns(s, n, k) {
					owners++
				}
			}
			if owners != 1 || !Owns(o, n, k) {
				t.Fatalf("N=%d: key %s has %d owners", n, k, owners)
			}
		}
		mean := len(ks) / n
		for s, c := range counts {
			if c < mean*8/10 || c > mean*12/10 {
				t.Errorf("N=%d: shard %d owns %d keys, mean %d", n, s, c, mean)
			}
		}
	}
}

// The assignment is a pure function of the key and N (the same in every process and every
// release: pinned values), and growing N moves keys only to the new shard, about 1/N of them.
func TestOwnerStable(t *testing.T) {
	for k, want := range map[string][2]int{ // owner of 4, owner of 16
		"highlevel/location/loc-00000": {0, 10},
		"tenant-1/appdirect/users":     {0, 0},
		"appdirect/stream/invoices":    {1, 9},
	} {
		if got := [2]int{Owner(k, 4), Owner(k, 16)}; got != want {
			t.Errorf("%s: owners %v, pinned %v: changing the assignment moves every deployment's work", k, got, want)
		}
	}
	ks := keys(5000)
	for _, n := range []int{1, 3, 8} {
		moved := 0
		for _, k := range ks {
			a, b := Owner(k, n), Owner(k, n+1)
			if a != b {
				moved++
				if b != n {
					t.Fatalf("N %d->%d: %s moved from %d to %d, not to the new shard", n, n+1, k, a, b)
				}
			}
		}
		if frac := float64(moved) / float64(len(ks)); frac > 1.3/float64(n+1) {
			t.Errorf("N %d->%d moved %.2f of the keys", n, n+1, frac)
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]Spec{"0/1": All, "3/4": {3, 4}, " 0/16 ": {0, 16}} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "4/4", "-1/4", "1/0", "a/b", "1", "1/2/3"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}
