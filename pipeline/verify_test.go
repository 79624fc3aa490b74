package pipeline

import (
	"strings"
	"testing"

	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/load"
)

func TestVerify_DeletionsNeedProof(t *testing.T) {
	complete := extract.Outcome{Complete: true, Total: 10}
	facts := load.ScanFacts{Seen: 10, Candidates: 2, KeyDigest: "10:ab"}
	cases := []struct {
		name     string
		e        scanEvidence
		deletes  bool
		verified bool
		why      string
	}{
		{"total equals the distinct keys, nothing new: proven", scanEvidence{Outcome: complete, Facts: facts}, true, true, ""},
		{"quarantined keys count as listed", scanEvidence{Outcome: extract.Outcome{Complete: true, Total: 11}, Facts: facts, Quarantined: 1}, true, true, ""},
		{"listing did not reach its end", scanEvidence{Outcome: extract.Outcome{Total: 10}, Facts: facts}, false, false, "did not reach its end"},
		{"first sync has nothing to delete", scanEvidence{Outcome: extract.Outcome{Complete: true, Total: -1}, Facts: facts, FirstSync: true}, false, true, ""},
		{"no candidates: nothing to delete", scanEvidence{Outcome: extract.Outcome{Complete: true, Total: -1}, Facts: load.ScanFacts{Seen: 3}}, false, true, ""},
		{"total unknown (bare array, invoices)", scanEvidence{Outcome: extract.Outcome{Complete: true, Total: -1}, Facts: facts}, false, false, "no total"},
		{"total unknown but the same keys as the previous complete scan", scanEvidence{Outcome: extract.Outcome{Complete: true, Total: -1}, Facts: facts, PrevDigest: "10:ab"}, true, true, ""},
		{"a repeat in the same run agrees", scanEvidence{Outcome: extract.Outcome{Complete: true, Total: -1}, Facts: facts, RepeatAgrees: true}, true, true, ""},
		{"drift", scanEvidence{Outcome: extract.Outcome{Complete: true, Total: 10, Drift: true}, Facts: facts}, false, false, "changed while it was paged"},
		{"total and distinct keys disagree (a capped or shifted listing)", scanEvidence{Outcome: complete, Facts: load.ScanFacts{Seen: 9, Candidates: 2}}, false, false, "total is 10 but 9"},
		{"new rows with candidates: a delete balanced by an insert looks the same", scanEvidence{Outcome: complete, Facts: facts, Inserted: 1}, false, false, "new to the warehouse"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := verify(c.e)
			if v.MarkDeletes != c.deletes || v.Verified != c.verified || (c.why == "") != (v.Why == "") || !strings.Contains(v.Why, c.why) {
				t.Fatalf("verdict %+v, want deletes=%v verified=%v why containing %q", v, c.deletes, c.verified, c.why)
			}
		})
	}
}

func TestVerify_UncheckedBoundariesAreNoProof(t *testing.T) {
	v := verify(scanEvidence{Outcome: extract.Outcome{Complete: true, Total: 10, Unchecked: 1}, Facts: load.ScanFacts{Seen: 10, Candidates: 1}})
	if v.MarkDeletes || !strings.Contains(v.Why, "could not be checked") {
		t.Fatalf("verdict %+v", v)
	}
}
