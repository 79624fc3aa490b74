package transform

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/internal/jsonscan"
	"github.com/marketsync/marketsync/schemas"
)

// benchLeads builds n lead records shaped like the simulator's lead v2 list (internal/bench
// measures the same shape through HTTP): epoch ms (one in ten in seconds), nested customer and
// creator objects, JSON columns, an occasional escaped note.
func benchLeads(n int) (recs [][]byte, size int64) {
	statuses := []string{"SUBMITTED", "ASSIGNED", "CONVERTED"}
	for i := 0; i < n; i++ {
		created := int64(1700000000000 + i*60000)
		unit := int64(1)
		if i%10 == 0 {
			unit = 1000
		}
		b := fmt.Appendf(nil, `{"id":"%08x-1c2d-4e5f-8a9b-%012x","createdOn":%d,"lastModified":%d,`, i, i*7, created/unit, (created+5000)/unit)
		b = fmt.Appendf(b, `"creator":{"companyId":"c%07d-aaaa-bbbb-cccc-dddddddddddd","companyName":"Reseller %d Inc","id":"u%07d-aaaa-bbbb-cccc-dddddddddddd","role":"RESELLER"},"customAttributes":{},`, i%97, i%97, i%1000)
		b = fmt.Appendf(b, `"customer":{"company":{"city":"Springfield","country":"US","name":"Acme %d Prospect","zip":"90210"},"contact":{"email":"lead%d@example.org","firstName":"Ada","lastName":"Lovelace","phone":"+14455555555"}},`, i%13, i)
		status := statuses[i%3]
		b = fmt.Appendf(b, `"leadType":"MANUAL","partner":"APPDIRECT","recipient":{"participantType":"CHANNEL","partner":"APPDIRECT"},"referrer":{"participantType":"CHANNEL","partner":"APPDIRECT"},"status":%q`, status)
		if status == "CONVERTED" {
			b = fmt.Appendf(b, `,"result":"WON","convertedCompany":{"id":"c%07d-aaaa-bbbb-cccc-dddddddddddd","name":"Reseller %d Inc"}`, i%97, i%97)
		}
		if i%4 == 0 {
			b = append(b, `,"notes":"Called twice \u2014 \u201cinterested\u201d\nfollow up"`...)
		}
		b = append(b, '}')
		recs = append(recs, b)
		size += int64(len(b))
	}
	return recs, size
}

// benchCompanies builds company records: many booleans, decimals as strings, ISO timestamps.
func benchCompanies(n int) (recs [][]byte, size int64) {
	for i := 0; i < n; i++ {
		b := fmt.Appendf(nil, `{"uuid":"%08x-1c2d-4e5f-8a9b-%012x","name":"Company %d","enabled":%t,"status":"ACTIVE",`, i, i, i, i%2 == 0)
		b = fmt.Appendf(b, `"creationDate":"2015-08-16T14:47:%02d-06:00","companySize":"SMALL","industry":"RETAIL","vendor":%t,"reseller":%t,"channelAdmin":false,`, i%60, i%3 == 0, i%5 == 0)
		b = fmt.Appendf(b, `"address":{"street1":"1 Main St","city":"Springfield","country":"US","zip":"90210"},"customAttributes":[{"name":"tier","value":"gold"}],`)
		b = fmt.Appendf(b, `"thirtyDaysPurchaseLimitExempt":%t,"thirtyDaysPurchaseLimitOverrideAmt":"%d.5100000000","dailyPurchaseLimitOverrideAmt":%s}`, i%7 == 0, i, strconv.Itoa(i%1000)+".25")
		recs = append(recs, b)
		size += int64(len(b))
	}
	return recs, size
}

func benchBatcher(b *testing.B, table string, recs [][]byte, size int64) {
	t, err := schemas.Lookup(table)
	if err != nil {
		b.Fatal(err)
	}
	bt := NewBatcher(t, memory.NewGoAllocator(), Meta{RunID: "r"})
	defer bt.Release()
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range recs {
			if err := bt.Add(r); err != nil {
				b.Fatal(err)
			}
		}
		bt.Flush().Release()
	}
}

// go test -tags duckdb_arrow -run '^$' -bench . ./transform
func BenchmarkBatcherLeads(b *testing.B) {
	recs, size := benchLeads(10000)
	benchBatcher(b, "leads", recs, size)
}

func BenchmarkBatcherCompanies(b *testing.B) {
	recs, size := benchCompanies(10000)
	benchBatcher(b, "companies", recs, size)
}

// BenchmarkBatcherLeadPages is the bench's headline shape without the simulator: pages of 250
// leads, each split into records with jsonscan.Skip as the extractor does, then Add per record.
// Besides wall-clock MB/s it reports the benchmark thread's own CPU time (cpuMB/s), which other
// processes on a shared machine do not inflate; compare builds with it, alternating them.
func BenchmarkBatcherLeadPages(b *testing.B) {
	recs, size := benchLeads(10000)
	var pages [][]byte
	for i := 0; i < len(recs); i += 250 {
		p := []byte(`{"links":[],"content":[`)
		for k, r := range recs[i:min(i+250, len(recs))] {
			if k > 0 {
				p = append(p, ',')
			}
			p = append(p, r...)
		}
		pages = append(pages, append(p, `],"page":{"size":250,"totalElements":10000,"totalPages":40,"number":0}}`...))
	}
	t, _ := schemas.Lookup("leads")
	bt := NewBatcher(t, memory.NewGoAllocator(), Meta{RunID: "r"})
	defer bt.Release()
	var split [][]byte
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := threadCPU()
	for i := 0; i < b.N; i++ {
		for _, p := range pages {
			split = split[:0]
			_, err := jsonscan.Members(p, 0, func(k []byte, vs int) (int, error) {
				if string(k) != "content" {
					return jsonscan.Skip(p, vs)
				}
				return jsonscan.Elements(p, vs, func(es int) (int, error) {
					ee, err := jsonscan.Skip(p, es)
					split = append(split, p[es:ee])
					return ee, err
				})
			})
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range split {
				if err := bt.Add(r); err != nil {
					b.Fatal(err)
				}
			}
		}
		bt.Flush().Release()
	}
	if ns := float64(threadCPU()-cpu0) / float64(b.N); ns > 0 {
		b.ReportMetric(float64(size)/ns*1e3, "cpuMB/s")
	}
}
