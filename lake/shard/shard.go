// Package shard assigns units of sync work (a tenant, a HighLevel location, an AppDirect stream)
// to one of N processes, deterministically and without coordination: every process computes the
// same owner for a key, so N processes started with shards 0..N-1 of N cover every key exactly
// once. It has no dependencies, so the pipeline can import it without the lake's.
package shard

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Owner returns the shard in [0, of) that owns key, by rendezvous (highest random weight)
// hashing: each shard scores the key and the highest score wins. Changing N from n to n+1 moves
// only about 1/(n+1) of the keys (to the new shard), unlike hash mod N, which moves most; so
// resizing a deployment keeps most cursors with the process that wrote them. of < 1 panics.
func Owner(key string, of int) int {
	if of < 1 {
		panic(fmt.Sprintf("shard.Owner: %d shards", of))
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	k := h.Sum64()
	best, bestScore := 0, uint64(0)
	for s := range of {
		if score := mix(k ^ mix(uint64(s)+0x9e3779b97f4a7c15)); s == 0 || score > bestScore {
			best, bestScore = s, score
		}
	}
	return best
}

// mix is SplitMix64's finalizer: it spreads FNV's weakly mixed high bits over the whole word.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Owns reports whether shard (0-based) of `of` shards owns key. of <= 1 owns everything.
func Owns(shard, of int, key string) bool {
	if of <= 1 {
		return true
	}
	return Owner(key, of) == shard
}

// Spec is one process's share: shard Index of Of.
type Spec struct{ Index, Of int }

// All is the whole of the work (no sharding).
var All = Spec{Index: 0, Of: 1}

// Owns reports whether this share owns key.
func (s Spec) Owns(key string) bool { return Owns(s.Index, s.Of, key) }

func (s Spec) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Of) }

// Parse reads "I/N" (0 <= I < N), as given to `syncer sync --shard I/N`; in a Kubernetes
// Indexed Job, I is $JOB_COMPLETION_INDEX and N the Job's completions.
func Parse(s string) (Spec, error) {
	i, n, ok := strings.Cut(strings.TrimSpace(s), "/")
	idx, err1 := strconv.Atoi(i)
	of, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil {
		return Spec{}, fmt.Errorf("shard %q: want I/N, e.g. 0/4 (shard I of N, counting from 0)", s)
	}
	if of < 1 || of > 10000 {
		return Spec{}, fmt.Errorf("shard %q: N must be 1 to 10000", s)
	}
	if idx < 0 || idx >= of {
		return Spec{}, fmt.Errorf("shard %q: I must be 0 to %d (shards count from 0, as JOB_COMPLETION_INDEX does)", s, of-1)
	}
	return Spec{Index: idx, Of: of}, nil
}
