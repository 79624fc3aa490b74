package extract

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCaps_CountsBoundsAndRefusesNonJSON(t *testing.T) {
	var gotUA, gotAccept atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/json":
			gotUA.Store(r.Header.Get("User-Agent"))
			gotAccept.Store(r.Header.Get("Accept"))
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Write([]byte(`{"content":[]}`))
		case "/undeclared": // no Content-Type: Go's server sniffs text/plain
			w.Write([]byte(` {"access_token":"t"}`))
		case "/xml":
			w.Header().Set("Content-Type", "application/xml")
			w.Write([]byte(`<invoices><invoice/></invoices>`))
		case "/html":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(`<html>captive portal</html>`))
		case "/xml-error": // an error page is a status, not a content problem
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(503)
			w.Write([]byte(`<error/>`))
		case "/empty":
			w.WriteHeader(204)
		case "/big":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`[` + strings.Repeat(`1,`, 100) + `1]`))
		case "/big-chunked":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`[`))
			w.(http.Flusher).Flush()
			w.Write([]byte(strings.Repeat(`1,`, 100) + `1]`))
		case "/slow":
			time.Sleep(300 * time.Millisecond)
			w.Write([]byte(`{}`))
		case "/cut": // promises 4096 bytes, sends 10, drops the connection
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "4096")
			w.WriteHeader(200)
			w.Write([]byte(`{"content":`))
			panic(http.ErrAbortHandler)
		}
	}))
	defer srv.Close()
	rt := &capsTransport{next: srv.Client().Transport, log: discard, timeout: 100 * time.Millisecond, maxBody: 100}

	t.Run("counts every attempt and its bytes in the call's counters", func(t *testing.T) {
		var st Counters
		res, err := send(t, rt, &call{stats: &st}, "GET", srv.URL+"/json", "")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := bodyBytes(res)
		if string(body) != `{"content":[]}` || st.Requests.Load() != 1 || st.Bytes.Load() != int64(len(body)) {
			t.Fatalf("body %q, requests %d, bytes %d", body, st.Requests.Load(), st.Bytes.Load())
		}
		if gotUA.Load() != userAgent || gotAccept.Load() != "application/json" {
			t.Fatalf("a request without them got User-Agent %q, Accept %q", gotUA.Load(), gotAccept.Load())
		}
	})
	t.Run("undeclared JSON is relabelled JSON", func(t *testing.T) {
		res, err := send(t, rt, &call{}, "GET", srv.URL+"/undeclared", "")
		if err != nil || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("err %v, Content-Type %q", err, res.Header.Get("Content-Type"))
		}
	})
	for _, path := range []string{"/xml", "/html"} {
		t.Run("a 2xx "+path[1:]+" body fails loudly, not retried", func(t *testing.T) {
			_, err := send(t, rt, &call{}, "GET", srv.URL+path, "")
			if !errors.Is(err, ErrContentType) || !isPermanent(err) || !strings.Contains(err.Error(), path[1:]) {
				t.Fatalf("err %v: want a permanent ErrContentType naming the type", err)
			}
		})
	}
	t.Run("error statuses and empty bodies pass", func(t *testing.T) {
		for path, want := range map[string]int{"/xml-error": 503, "/empty": 204} {
			res, err := send(t, rt, &call{}, "GET", srv.URL+path, "")
			if err != nil || res.StatusCode != want {
				t.Fatalf("%s: %v %v", path, res, err)
			}
		}
	})
	for _, path := range []string{"/big", "/big-chunked"} {
		t.Run("a body over the cap fails, not retried ("+path[1:]+")", func(t *testing.T) {
			_, err := send(t, rt, &call{}, "GET", srv.URL+path, "")
			if !errors.Is(err, ErrTooLarge) || !isPermanent(err) {
				t.Fatalf("err %v: want a permanent ErrTooLarge", err)
			}
		})
	}
	t.Run("each attempt has its own timeout; a timeout or a cut body is transient", func(t *testing.T) {
		for _, path := range []string{"/slow", "/cut"} {
			start := time.Now()
			_, err := send(t, rt, &call{}, "GET", srv.URL+path, "")
			if err == nil || isPermanent(err) || time.Since(start) > 250*time.Millisecond {
				t.Fatalf("%s: err %v after %s: want a transient error within the 100 ms timeout", path, err, time.Since(start))
			}
		}
	})
	t.Run("a certificate that does not verify is permanent", func(t *testing.T) {
		tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
		tlsSrv.StartTLS()
		defer tlsSrv.Close()
		_, err := send(t, &capsTransport{next: http.DefaultTransport, log: discard, maxBody: 100}, &call{}, "GET", tlsSrv.URL, "")
		if !isPermanent(err) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err %v", err)
		}
	})
}
