package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/jsonscan"
	"github.com/marketsync/marketsync/schemas"
	"github.com/marketsync/marketsync/transform"
)

// leadPages fetches n pages of 250 leads (the anchors' workload shape) from a simulator.
func leadPages(n int) (pages [][]byte, err error) {
	s, err := startSim(apisim.Config{Seed: 1, Scale: n * 250, Profile: "fast"})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	tok, err := token(s.URL()+"/oauth2/token", url.Values{"grant_type": {"password"}, "username": {apisim.DemoLeadUser},
		"password": {apisim.DemoLeadPassword}, "scope": {"ROLE_RESELLER_MANAGER"}}.Encode(), true)
	if err != nil {
		return nil, err
	}
	for p := 0; p < n; p++ {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/lead/v2/leads?context=RESELLER_MANAGER&companyId=x&size=250&sortOrder=ASC&page=%d", s.URL(), p), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return nil, err
		}
		pages = append(pages, body)
	}
	return pages, nil
}

func splitContent(p []byte) [][]byte {
	var recs [][]byte
	_, _ = jsonscan.Members(p, 0, func(k []byte, vs int) (int, error) {
		if string(k) != "content" {
			return jsonscan.Skip(p, vs)
		}
		return jsonscan.Elements(p, vs, func(es int) (int, error) {
			ee, err := jsonscan.Skip(p, es)
			recs = append(recs, p[es:ee])
			return ee, err
		})
	})
	return recs
}

type leadStruct struct {
	ID               string          `json:"id"`
	CreatedOn        int64           `json:"createdOn"`
	LastModified     int64           `json:"lastModified"`
	Status           string          `json:"status"`
	Result           string          `json:"result"`
	LeadType         string          `json:"leadType"`
	Partner          string          `json:"partner"`
	Notes            string          `json:"notes"`
	Creator          json.RawMessage `json:"creator"`
	Customer         json.RawMessage `json:"customer"`
	CustomAttributes json.RawMessage `json:"customAttributes"`
	Recipient        json.RawMessage `json:"recipient"`
	Referrer         json.RawMessage `json:"referrer"`
	Reseller         json.RawMessage `json:"reseller"`
	ConvertedCompany json.RawMessage `json:"convertedCompany"`
	ConvertedUser    json.RawMessage `json:"convertedUser"`
}

// benchTransform: JSON -> Arrow per core, against encoding/json into structs on the same pages.
func benchTransform(_ context.Context, o Options, rep *Report) error {
	pages, err := leadPages(40)
	if err != nil {
		return err
	}
	var size int64
	var recs [][]byte
	for _, p := range pages {
		size += int64(len(p))
		recs = append(recs, splitContent(p)...)
	}
	records, withSplit, stdlib := transformBenchmarks(pages, recs)
	var prof strings.Builder
	if o.CPUProfile {
		stop := profile(&prof)
		_, _ = measure(size, withSplit)
		stop()
	}
	mbps := func(f func() error) (float64, float64) {
		v, cpu, err := measureCPU(size, f)
		if err != nil {
			return 0, 0
		}
		return v, cpu
	}
	ours, _ := mbps(records)
	split, splitCPU := mbps(withSplit)
	base, baseCPU := mbps(stdlib)
	cpuNote := ""
	if splitCPU > 0 && baseCPU > 0 {
		cpuNote = fmt.Sprintf("; by the measuring thread's CPU time (steadier on a shared machine): %.0f MB/s, encoding/json %.0f MB/s", splitCPU, baseCPU)
	}
	rep.add(Row{Measure: "Transform: lead pages -> Arrow, page split included, one goroutine", Ours: fmt.Sprintf("%.0f MB/s", split),
		Baseline: fmt.Sprintf("encoding/json into structs: %.0f MB/s", base), Ratio: ratio(split, base),
		Goal: ">= 300 MB/s per core", Verdict: verdict(split >= 300),
		Notes: fmt.Sprintf("the headline includes splitting each page into records (as the extractor does); records already split -> Arrow: %.0f MB/s (%s x encoding/json)%s", ours, ratio(ours, base), cpuNote)})
	if prof.Len() > 0 {
		rep.Profiles = append(rep.Profiles, "Transform (pages -> Arrow, split included):\n"+prof.String())
	}
	return nil
}

// measure runs f (one pass over size bytes) repeatedly for about a second and returns MB/s. The
// product binary runs it, so it does not link package testing.
func measure(size int64, f func() error) (float64, error) {
	mbps, _, err := measureCPU(size, f)
	return mbps, err
}

// measureCPU is measure, also returning MB/s by the CPU time of the thread that ran f (0 if
// not measured). On a shared machine the wall-clock figure includes the time other processes
// held the core; the thread's CPU time does not (the garbage collector's background work on
// other threads is not in it either).
func measureCPU(size int64, f func() error) (mbps, cpuMBps float64, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := f(); err != nil { // warm-up
		return 0, 0, err
	}
	cpu0, cpuOK := threadCPU()
	start, n := time.Now(), 0
	for time.Since(start) < time.Second || n < 3 {
		if err := f(); err != nil {
			return 0, 0, err
		}
		n++
	}
	wall := time.Since(start)
	mb := float64(size) * float64(n) / 1e6
	if cpu1, ok := threadCPU(); ok && cpuOK && cpu1 > cpu0 {
		cpuMBps = mb / (float64(cpu1-cpu0) / 1e9)
	}
	return mb / wall.Seconds(), cpuMBps, nil
}

// transformBenchmarks returns the transform measures as one pass each: records -> Arrow,
// pages -> Arrow (with the split), and encoding/json into structs.
func transformBenchmarks(pages, recs [][]byte) (records, withSplit, stdlib func() error) {
	table, _ := schemas.Lookup("leads")
	bt := transform.NewBatcher(table, memory.NewGoAllocator(), transform.Meta{RunID: "r"})
	records = func() error {
		for _, r := range recs {
			if err := bt.Add(r); err != nil {
				return err
			}
		}
		bt.Flush().Release()
		return nil
	}
	withSplit = func() error {
		for _, p := range pages {
			for _, r := range splitContent(p) {
				if err := bt.Add(r); err != nil {
					return err
				}
			}
		}
		bt.Flush().Release()
		return nil
	}
	stdlib = func() error {
		for _, p := range pages {
			var page struct {
				Content []leadStruct `json:"content"`
			}
			if err := json.Unmarshal(p, &page); err != nil {
				return err
			}
		}
		return nil
	}
	return records, withSplit, stdlib
}

// profile starts a CPU profile; stop writes its top entries into w.
func profile(w *strings.Builder) (stop func()) {
	f, err := createTemp("cpu-*.prof")
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		w.WriteString(pprofTop(f.Name()))
	}
}
