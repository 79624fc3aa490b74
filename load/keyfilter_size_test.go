package load

import "testing"

// A filter's size grows with the table up to maxFilterBytes and never wraps: past ~1.37G rows
// the uncapped size is 2^32, which as a uint32 was 0 (a 32-byte filter, rebuilt on every write).
func TestKeyFilter_SizeIsCappedNotWrapped(t *testing.T) {
	for _, c := range []struct {
		rows int64
		want uint32
	}{{0, 512 << 10}, {1_000_000, 2 << 20}, {10_000_000, 16 << 20}, {107_000_000, maxFilterBytes}, {1_375_000_000, maxFilterBytes}, {4_000_000_000, maxFilterBytes}} {
		if got := filterBytes(c.rows); got != c.want {
			t.Errorf("filterBytes(%d) = %d, want %d", c.rows, got, c.want)
		}
	}
}
