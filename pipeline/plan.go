package pipeline

import (
	"fmt"
	"time"

	"github.com/marketsync/marketsync/state"
)

// Mode is how a stream partition is read in one run.
type Mode string

// Modes of a plan.
const (
	// Full lists everything; if the listing proves complete, rows it did not see are marked
	// deleted.
	Full Mode = "full"
	// Incremental lists rows at or after the cursor minus the stream's lookback.
	Incremental Mode = "incremental"
	// Resume continues an interrupted first load from its last checkpoint. It proves nothing
	// about deletions, so the run after a completed resume is a full scan.
	Resume Mode = "resume"
)

// Plan is what one stream partition's run will do, and why.
type Plan struct {
	Mode   Mode
	Since  time.Time // lower bound of an incremental or resumed listing; zero for Full
	Reason string    // for logs and the summary
}

// planInput is everything the planner decides from.
type planInput struct {
	HasCursor     bool          // the stream declares a cursor column
	Found         bool          // a cursor row exists for the partition
	Cursor        state.Cursor  // the committed cursor (zero if none)
	FullRefresh   bool          // --full-refresh
	FullScanEvery time.Duration // 0: never forced
	Lookback      time.Duration
	Now           time.Time
}

// plan decides full, incremental or resume. It is pure: the same input gives the same plan.
func plan(in planInput) Plan {
	switch {
	case in.FullRefresh:
		return Plan{Mode: Full, Reason: "--full-refresh"}
	case !in.HasCursor:
		return Plan{Mode: Full, Reason: "no cursor column: every run is a full snapshot"}
	case !in.Found || in.Cursor.Value == 0:
		return Plan{Mode: Full, Reason: "first sync"}
	}
	since := in.Cursor.Time().Add(-in.Lookback)
	if in.Cursor.LastFullScan.IsZero() {
		if in.Cursor.Loaded {
			return Plan{Mode: Full, Reason: "first load completed after a resume: a full scan verifies it"}
		}
		return Plan{Mode: Resume, Since: since, Reason: "resuming an interrupted first load from its checkpoint"}
	}
	if in.Cursor.Rescan {
		return Plan{Mode: Full, Reason: "rows left a swept status last run: a full scan re-reads them"}
	}
	if age := in.Now.Sub(in.Cursor.LastFullScan); in.FullScanEvery > 0 && age > in.FullScanEvery {
		return Plan{Mode: Full, Reason: fmt.Sprintf("last full scan %s ago (full_scan_every %s)", age.Round(time.Minute), in.FullScanEvery)}
	}
	return Plan{Mode: Incremental, Since: since, Reason: fmt.Sprintf("from the cursor minus %s lookback", in.Lookback)}
}
