package extract

import (
	"bytes"
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// Page is one page of raw records. Records are sub-slices of Body; the receiver may keep them
// only until Emit returns.
type Page struct {
	Stream    string
	Partition string
	Number    int
	Records   [][]byte
}

// Emit receives pages in order. It is called from one goroutine at a time.
type Emit func(ctx context.Context, p Page) error

// Outcome says what a stream run saw.
type Outcome struct {
	Pages int
	// Complete: every row was listed by an unfiltered scan whose totals did not move, so rows
	// absent from it may be marked deleted.
	Complete bool
	// Drift: the listing changed while it was paged (rows inserted or deleted mid-scan).
	Drift bool
	// Total is the row count the last page announced (-1: the API gives none). A full scan that
	// wrote fewer distinct rows than this missed some: rows shifted across page boundaries.
	Total int
}

// fetched is one page plus what its metadata said.
type fetched struct {
	page       Page
	totalRows  int // -1 if the API gives none
	totalPages int // -1 if unknown
}

type fetchFunc func(ctx context.Context, k int) (fetched, error)

// pagesWithTotal pages an endpoint whose first page reveals the total: page 0 first, then the
// rest concurrently (at most conc in flight and conc fetched-but-not-emitted, so memory stays
// bounded), emitted strictly in page order.
func pagesWithTotal(ctx context.Context, conc int, fetch fetchFunc, emit Emit) (Outcome, error) {
	first, err := fetch(ctx, 0)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Complete: true, Total: first.totalRows}
	n := first.totalPages
	if n < 1 {
		n = 1
	}
	if len(first.page.Records) == 0 && first.totalRows > 0 {
		out.Drift = true
	}
	if err := emit(ctx, first.page); err != nil {
		return out, err
	}
	out.Pages = 1
	if n == 1 {
		return out, nil
	}
	results := make([]chan fetched, n)
	for k := range results {
		results[k] = make(chan fetched, 1)
	}
	sem := make(chan struct{}, max(1, conc))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for k := 1; k < n; k++ {
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			g.Go(func() error {
				f, err := fetch(gctx, k)
				if err != nil {
					return err
				}
				results[k] <- f
				return nil
			})
		}
		return nil
	})
	g.Go(func() error {
		for k := 1; k < n; k++ {
			var f fetched
			select {
			case f = <-results[k]:
			case <-gctx.Done():
				return gctx.Err()
			}
			<-sem
			if f.totalRows != first.totalRows {
				out.Drift = true
			}
			out.Total = f.totalRows
			if len(f.page.Records) == 0 && k < n-1 {
				out.Drift = true // an empty page before the end: rows moved under us
			}
			if err := emit(gctx, f.page); err != nil {
				return err
			}
			out.Pages++
		}
		return nil
	})
	err = g.Wait()
	if out.Drift {
		out.Complete = false
	}
	return out, err
}

// maxPages guards against an API that never stops paging.
const maxPages = 2_000_000

// pagesUntilShort pages an endpoint with no total (offset/count, ends on an empty or short page
// or 204): it fetches conc pages ahead speculatively and emits them in order, stopping at the
// first short page; the few pages fetched past the end are discarded.
func pagesUntilShort(ctx context.Context, conc, pageSize int, fetch fetchFunc, emit Emit) (Outcome, error) {
	out := Outcome{Complete: true, Total: -1}
	var prevFirst []byte
	for base := 0; base < maxPages; base += conc {
		batch := make([]fetched, conc)
		g, gctx := errgroup.WithContext(ctx)
		for j := 0; j < conc; j++ {
			g.Go(func() error {
				f, err := fetch(gctx, base+j)
				batch[j] = f
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return out, err
		}
		for _, f := range batch {
			recs := f.page.Records
			if len(recs) > 0 {
				if prevFirst != nil && bytes.Equal(recs[0], prevFirst) {
					return out, fmt.Errorf("%w: stream %s: page %d repeats the previous page (the server ignores the offset)", ErrPagination, f.page.Stream, f.page.Number)
				}
				prevFirst = append(prevFirst[:0], recs[0]...)
				if err := emit(ctx, f.page); err != nil {
					return out, err
				}
				out.Pages++
			}
			if len(recs) < pageSize {
				return out, nil
			}
		}
	}
	return out, fmt.Errorf("%w: more than %d pages", ErrPagination, maxPages)
}
