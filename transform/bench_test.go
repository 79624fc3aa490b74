package transform

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/internal/jsonscan"
	"github.com/marketsync/marketsync/schemas"
)

// leadPages fetches n pages of 250 leads from an in-process simulator.
func leadPages(tb testing.TB, n int) (pages [][]byte, records [][]byte) {
	tb.Helper()
	s, err := apisim.New(apisim.Config{Seed: 1, Scale: n * 250, Profile: "fast"})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	form := url.Values{"grant_type": {"password"}, "username": {apisim.DemoLeadUser}, "password": {apisim.DemoLeadPassword}}
	req, _ := http.NewRequest("POST", s.URL()+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(apisim.DemoClientID, apisim.DemoClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	for p := 0; p < n; p++ {
		req, _ := http.NewRequest("GET", s.URL()+"/api/lead/v2/leads?context=RESELLER_MANAGER&companyId=x&size=250&sortOrder=ASC&page="+itoa(p), nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		pages = append(pages, body)
		_ = jsonscan.Array(jsonscan.Get(body, "content"), func(v []byte) error { records = append(records, v); return nil })
	}
	return pages, records
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func pageBytes(pages [][]byte) int64 {
	var n int64
	for _, p := range pages {
		n += int64(len(p))
	}
	return n
}

// BenchmarkTransform_Leads: pages of lead JSON -> Arrow batches, one goroutine.
func BenchmarkTransform_Leads(b *testing.B) {
	pages, _ := leadPages(b, 40)
	table, _ := schemas.Lookup("leads")
	bt := NewBatcher(table, memory.NewGoAllocator(), Meta{RunID: "r"})
	defer bt.Release()
	b.SetBytes(pageBytes(pages))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range pages {
			// As the pipeline does: the extractor splits the page once, the batcher walks each record once.
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
			for _, r := range recs {
				if err := bt.Add(r); err != nil {
					b.Fatal(err)
				}
			}
			if bt.Len() >= 25000 {
				bt.Flush().Release()
			}
		}
		if r := bt.Flush(); r != nil {
			r.Release()
		}
	}
}

// BenchmarkTransformRecords_Leads: records already split -> Arrow (the transform stage alone).
func BenchmarkTransformRecords_Leads(b *testing.B) {
	pages, recs := leadPages(b, 40)
	table, _ := schemas.Lookup("leads")
	bt := NewBatcher(table, memory.NewGoAllocator(), Meta{RunID: "r"})
	defer bt.Release()
	b.SetBytes(pageBytes(pages))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range recs {
			if err := bt.Add(r); err != nil {
				b.Fatal(err)
			}
			if bt.Len() >= 25000 {
				bt.Flush().Release()
			}
		}
		if r := bt.Flush(); r != nil {
			r.Release()
		}
	}
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
	ProfileCompany   json.RawMessage `json:"profileCompany"`
	ProfileProduct   json.RawMessage `json:"profileProduct"`
	ProfileProductEd json.RawMessage `json:"profileProductEdition"`
}

// BenchmarkEncodingJSON_Leads: the same pages into structs with encoding/json (the baseline).
func BenchmarkEncodingJSON_Leads(b *testing.B) {
	pages, _ := leadPages(b, 40)
	b.SetBytes(pageBytes(pages))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range pages {
			var page struct {
				Content []leadStruct `json:"content"`
			}
			if err := json.Unmarshal(p, &page); err != nil {
				b.Fatal(err)
			}
		}
	}
}
