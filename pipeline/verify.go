package pipeline

import (
	"fmt"

	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/load"
)

// verdict is what a full scan proved.
type verdict struct {
	// MarkDeletes: the scan provably listed every live row, so the rows it did not see are gone.
	MarkDeletes bool
	// Verified: the scan counts as a verified full scan (deletions marked, or none to mark).
	Verified bool
	// Why names the guarantee the run could not give, for the summary ("" when verified).
	Why string
}

// scanEvidence is what the verifier judges a full scan by.
type scanEvidence struct {
	Outcome     extract.Outcome
	Facts       load.ScanFacts
	Quarantined int64  // records listed but quarantined (their keys count as seen)
	Inserted    int64  // rows new to the warehouse that this scan wrote
	PrevDigest  string // key-set digest of the previous complete full scan ("" if none)
	// RepeatAgrees: this was the second scan of the run and it listed exactly what the first did.
	RepeatAgrees bool
	FirstSync    bool // nothing in the warehouse yet: nothing can be deleted
}

// verify decides whether a full scan proves which rows are gone. Proof is either
//   - the server's total equals the distinct keys received, with no drift seen and no row new to
//     the warehouse (an insert balancing a mid-scan delete would keep the total while shifting a
//     live row off a page), or
//   - the scan listed exactly the key set of the previous complete full scan (of an earlier
//     run, or of this run when it had to scan twice).
//
// Without proof nothing is marked deleted and the summary says why; the next run tries again.
func verify(e scanEvidence) verdict {
	o := e.Outcome
	switch {
	case !o.Complete:
		return verdict{Why: "deletions not marked: " + orDefault(o.Why, "the listing did not reach its end")}
	case e.FirstSync || e.Facts.Candidates == 0:
		return verdict{Verified: true} // nothing to delete
	case e.RepeatAgrees, e.PrevDigest != "" && e.PrevDigest == e.Facts.KeyDigest:
		return verdict{MarkDeletes: true, Verified: true}
	case o.Drift:
		return verdict{Why: "deletions not marked: the listing changed while it was paged"}
	case o.Total < 0:
		return verdict{Why: "deletions not marked: " + orDefault(o.Why, "the server gives no total")}
	}
	distinct := e.Facts.Seen + e.Quarantined
	switch {
	case o.Unchecked > 0:
		return verdict{Why: fmt.Sprintf("deletions not marked: %d page boundaries could not be checked for rows shifted while paging", o.Unchecked)}
	case distinct != int64(o.Total):
		return verdict{Why: fmt.Sprintf("deletions not marked: the server's total is %d but %d distinct rows were listed", o.Total, distinct)}
	case e.Inserted > 0:
		return verdict{Why: fmt.Sprintf("deletions not marked: %d rows new to the warehouse were listed while %d were not, "+
			"which a listing shifted by a delete and an insert also shows", e.Inserted, e.Facts.Candidates)}
	}
	return verdict{MarkDeletes: true, Verified: true}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
