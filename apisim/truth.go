package apisim

import (
	"hash/fnv"
	"strconv"
	"sync"
)

// RowChecksum hashes one row's identity (and version) for the order-independent checksums of
// /_sim/truth; a warehouse computes the same sum over its rows to prove it equals the source.
func RowChecksum(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

// StreamTruth is what the source holds for one stream now.
type StreamTruth struct {
	Live            int      `json:"live"`
	IDChecksum      uint64   `json:"id_checksum"`      // sum of RowChecksum(id)
	VersionChecksum uint64   `json:"version_checksum"` // sum of RowChecksum(id, version)
	VersionField    string   `json:"version_field"`    // the column the version is read from
	MaxUpdatedMs    int64    `json:"max_updated_ms"`
	DeletedSince    []string `json:"deleted_since"` // ids deleted at or after ?deletedSince
	// ContentDigest is ContentDigest(Rows(stream)): every value of every live row.
	ContentDigest uint64 `json:"content_digest"`
}

// Truth is the body of GET /_sim/truth.
type Truth struct {
	NowMs   int64                  `json:"now_ms"`
	Streams map[string]StreamTruth `json:"streams"`
}

// VersionFields names, per stream, the warehouse column whose value every update changes; the
// version checksum uses its value as text (timestamps as epoch milliseconds).
var VersionFields = map[string]string{
	"companies": "status", "users": "last_modified", "invoices": "status",
	"leads": "last_modified", "opportunities": "status", "events": "creation_date", "charges": "updated_at",
	"locations": "installed_at",
}

// Truth computes the source truth by walking every row (O(rows); meant for tests and benches).
// Streams has the seven synced streams and "locations" (every listed location, installed or not;
// its version is installedAt, "" where the app is not installed).
func (s *Server) Truth(deletedSince int64) Truth {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := Truth{NowMs: s.now, Streams: map[string]StreamTruth{}}
	g := s.gen
	for _, name := range []string{"companies", "users", "invoices", "leads", "opportunities", "events"} {
		t := s.tables[name]
		st := StreamTruth{VersionField: VersionFields[name], DeletedSince: []string{}}
		for i := 0; i < t.count; i++ {
			var id, ver string
			var mod int64
			switch name {
			case "companies":
				id, ver, mod = uuidOf(g.seed, name, i), companyStatus(t, g.seed, i), t.modified(i)
			case "users":
				id, mod = uuidOf(g.seed, name, i), t.modified(i)
				if !g.userHidesTime(i) { // else no last_modified is served: the version is empty
					ver = strconv.FormatInt(mod, 10)
				}
			case "invoices":
				id, ver, mod = strconv.Itoa(1000+i), invoiceStatus(t, g.seed, g.start, i), t.modified(i)
			case "leads":
				_, m := g.leadTimes(t, i)
				id, ver, mod = uuidOf(g.seed, name, i), strconv.FormatInt(m, 10), m
			case "opportunities":
				id, ver, mod = uuidOf(g.seed, name, i), oppStatus(t, g.seed, g.start, i), t.modified(i)
			case "events": // a log: the creation time is the only version an event has
				id, mod = uuidOf(g.seed, name, i), t.created(i)
				ver = strconv.FormatInt(mod, 10)
			}
			if at, gone := t.deletedAt[i]; gone {
				if at >= deletedSince {
					st.DeletedSince = append(st.DeletedSince, id)
				}
				continue
			}
			st.add(id, ver, mod)
		}
		out.Streams[name] = st
	}
	st := StreamTruth{VersionField: VersionFields["charges"], DeletedSince: []string{}}
	for _, loc := range s.locations {
		if !loc.installed {
			continue
		}
		t := loc.charges
		for i := 0; i < t.count; i++ {
			id := hlID(g.seed, t.name, i)
			if at, gone := t.deletedAt[i]; gone {
				if at >= deletedSince {
					st.DeletedSince = append(st.DeletedSince, id)
				}
				continue
			}
			st.add(id, strconv.FormatInt(t.modified(i), 10), t.modified(i))
		}
	}
	out.Streams["charges"] = st
	st = StreamTruth{VersionField: VersionFields["locations"], DeletedSince: []string{}}
	for _, loc := range s.locations {
		ver := ""
		if loc.installed {
			ver = strconv.FormatInt(loc.installedAt, 10)
		}
		st.add(loc.id, ver, loc.installedAt)
	}
	out.Streams["locations"] = st
	// Content digests, one goroutine per stream (they only read).
	digests := make([]uint64, len(OracleStreams))
	errs := make([]error, len(OracleStreams))
	var wg sync.WaitGroup
	for k, name := range OracleStreams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			digests[k], errs[k] = s.contentDigestLocked(name)
		}()
	}
	wg.Wait()
	for k, name := range OracleStreams {
		if errs[k] != nil {
			panic(errs[k]) // a generator bug: the record disagrees with the generator's state
		}
		st := out.Streams[name]
		st.ContentDigest = digests[k]
		out.Streams[name] = st
	}
	return out
}

func (st *StreamTruth) add(id, ver string, mod int64) {
	st.Live++
	st.IDChecksum += RowChecksum(id)
	st.VersionChecksum += RowChecksum(id, ver)
	st.MaxUpdatedMs = max(st.MaxUpdatedMs, mod)
}
