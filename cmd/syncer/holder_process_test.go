package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/load"
	"github.com/marketsync/marketsync/schemas"
)

// startSync starts `syncer sync` and waits for its control socket.
func startSync(t *testing.T, cfg string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"sync", "--config", cfg, "--progress", "never", "--log-level", "debug"}, args...)...)
	errb := &lockedBuffer{}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sock := filepath.Join(filepath.Dir(cfg), "w.duckdb.sock")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 && strings.Contains(errb.String(), "msg=") {
			return cmd, errb
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sync never listened on %s:\n%s", sock, errb.String())
		}
	}
}

// While a sync runs (held: every request of the source hangs), status, runs, query and export
// answer from it, and print exactly what they print from the file once it has stopped, for
// the same committed data. Writes are refused. A SIGKILLed sync leaves its socket: a reader
// then says what holds the file; the next sync replaces the socket, and reads during it see
// only committed data (no cursor ahead of its rows, counts that only grow).
func TestHolder_ReadsAnswerDuringASync(t *testing.T) {
	skipUnderRace(t)
	t.Parallel() // mostly waiting (rate budgets, backoff, kills): the long tests overlap
	// Scale 1500 (was 3000: 11 reads fitted in the third sync): ~5 still do; it fails under 3.
	s := startSim(t, apisim.Config{Seed: 11, Scale: 1500, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "w.duckdb")
	cfg := writeConfig(t, dir, s, func(c string) string { return c + "batch_rows: 200\n" })
	if code, _, errOut := runBin(t, "sync", "--config", cfg, "--progress", "never", "--streams", "companies,users"); code != 0 {
		t.Fatalf("first sync: exit %d\n%s", code, errOut)
	}
	db, err := sql.Open("duckdb", wh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(typesTable); err != nil {
		t.Fatal(err)
	}
	db.Close()

	reads := [][]string{
		{"status"}, {"status", "--format", "csv"}, {"status", "--format", "json"},
		{"runs"}, {"runs", "--format", "csv"}, {"runs", "--format", "json"}, {"runs", "--stream", "users", "--last", "1"},
		{"query", "company_overview", "--format", "csv"}, {"query", "SELECT * FROM companies ORDER BY 1", "--format", "jsonl"},
	}
	for _, f := range []string{"table", "csv", "json", "jsonl"} {
		reads = append(reads, []string{"query", "SELECT * FROM t ORDER BY id", "--format", f})
	}
	// The reads run at once (readers do: the holder answers them concurrently), three at a time.
	readAll := func() (out, notes []string) {
		out, notes = make([]string, len(reads)), make([]string, len(reads))
		codes := make([]int, len(reads))
		var wg sync.WaitGroup
		slots := make(chan struct{}, 3)
		for i, r := range reads {
			wg.Add(1)
			slots <- struct{}{}
			go func() {
				defer func() { <-slots; wg.Done() }()
				codes[i], out[i], notes[i] = runBin(t, append(r, "--config", cfg)...)
			}()
		}
		wg.Wait()
		for i, r := range reads {
			if codes[i] != 0 {
				t.Fatalf("%v: exit %d\n%s", r, codes[i], notes[i])
			}
		}
		return out, notes
	}
	before, _ := readAll()

	// A sync that commits nothing while it runs: the source answers no request.
	s.SetFaults(apisim.Faults{Slow: 1, SlowDelay: 10 * time.Minute})
	sync2, _ := startSync(t, cfg)
	if code, _, errOut := runBin(t, "query", "SELECT 1", "--warehouse", wh); code != 0 {
		t.Fatalf("a read during the sync: exit %d: %s", code, errOut)
	}
	during, notes := readAll()
	for i, r := range reads {
		want := r[0] == "status" || r[0] == "runs"
		if got := strings.Contains(notes[i], "note: a sync (pid "+strconv.Itoa(sync2.Process.Pid)+") has been running since"); got != want {
			t.Errorf("%v: stderr %q: a note that a sync runs: %v, want %v", r, notes[i], got, want)
		}
	}
	if !strings.Contains(notes[0], "(streams: "+strings.Join(schemas.Streams, ", ")+")") {
		t.Errorf("status's note does not name the streams: %q", notes[0])
	}
	// Export during the sync: to another directory, and to the sync's own Parquet directory.
	for _, to := range []string{filepath.Join(dir, "export"), filepath.Join(dir, "parquet")} {
		code, out, errOut := runBin(t, "export", "--config", cfg, "--parquet-dir", to)
		if code != 0 || !strings.Contains(out, "exported 8 tables") {
			t.Fatalf("export to %s during the sync: exit %d %s %s", to, code, out, errOut)
		}
	}
	if code, _, errOut := runBin(t, "query", "DELETE FROM companies", "--config", cfg); code != exitUsage || !strings.Contains(errOut, "only a read") {
		t.Fatalf("a write through the sync: exit %d %s", code, errOut)
	}

	// SIGKILL: nothing more is committed; the socket stays behind.
	_ = sync2.Process.Signal(syscall.SIGKILL)
	_ = sync2.Wait()
	if fi, err := os.Stat(wh + ".sock"); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no stale socket after SIGKILL: %v", err)
	}
	after, _ := readAll()
	for i, r := range reads {
		// status counts minutes since the last success: a minute may have turned in between.
		if during[i] != after[i] && during[i] != before[i] {
			t.Errorf("%v through the running sync differs from the file read after it stopped:\n%s\nafter:\n%s", r, during[i], after[i])
		}
	}
	// The export holds exactly the committed rows.
	ldb, err := load.OpenReadOnly(t.Context(), wh)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"export", "parquet"} {
		for _, tb := range schemas.Tables {
			var inDB, inPQ int64
			_ = ldb.QueryRow("SELECT count(*) FROM " + tb.Name).Scan(&inDB)
			q := fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/%s/%s/*/*.parquet', hive_partitioning=true)", dir, to, tb.Name)
			if err := ldb.QueryRow(q).Scan(&inPQ); (err != nil && inDB > 0) || inPQ != inDB {
				t.Errorf("%s/%s: parquet %d rows (%v), duckdb %d", to, tb.Name, inPQ, err, inDB)
			}
		}
	}
	ldb.Close()

	// The stale socket while a process that is not syncer holds the file: the reader says so.
	holdDB, err := load.Open(t.Context(), wh)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runBin(t, "status", "--warehouse", wh)
	holdDB.Close()
	if code != exitFailed || !strings.Contains(errOut, "locked") || !strings.Contains(errOut, "left by a syncer that was killed") {
		t.Fatalf("status with a stale socket and a foreign holder: exit %d: %s", code, errOut)
	}

	// The next sync replaces the stale socket; reads during it see committed data only.
	s.SetFaults(apisim.Faults{Slow: 1, SlowDelay: 30 * time.Millisecond})
	sync3, errb := startSync(t, cfg)
	const invariant = `SELECT s.stream, CAST(json_extract(s.cursor, '$.value_us') AS BIGINT) AS cursor_us, %s AS have_us, %s AS n FROM _sync_state s WHERE s.stream = '%s'`
	var parts []string
	for _, tb := range schemas.Tables {
		if tb.Cursor == "" || tb.CursorFromServerClock || tb.Partition != "" {
			continue
		}
		parts = append(parts, fmt.Sprintf(invariant, fmt.Sprintf("(SELECT coalesce(max(epoch_us(%s)), 0) FROM %s)", tb.Cursor, tb.Name),
			fmt.Sprintf("(SELECT count(*) FROM %s)", tb.Name), tb.Name))
	}
	q := strings.Join(parts, " UNION ALL ")
	last, readsDuring := map[string]int64{}, 0
	for sync3.ProcessState == nil {
		code, out, errOut := runBin(t, "query", q, "--warehouse", wh, "--format", "csv")
		if code != 0 {
			if strings.Contains(errOut, "closed the connection") {
				break // the sync exited while answering
			}
			t.Fatalf("a read during the sync: exit %d: %s", code, errOut)
		}
		if !strings.Contains(errb.String(), "run finished") {
			readsDuring++
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\r\n")[1:] {
			f := strings.Split(line, ",")
			cur, _ := strconv.ParseInt(f[1], 10, 64)
			have, _ := strconv.ParseInt(f[2], 10, 64)
			n, _ := strconv.ParseInt(f[3], 10, 64)
			if f[1] != "" && cur > have {
				t.Fatalf("%s: a read saw its cursor (%d) ahead of its rows (max %d): not a committed state", f[0], cur, have)
			}
			if n < last[f[0]] {
				t.Fatalf("%s: a read saw %d rows after one saw %d", f[0], n, last[f[0]])
			}
			last[f[0]] = n
		}
		if strings.Contains(errb.String(), "run finished") {
			break
		}
	}
	if err := sync3.Wait(); err != nil {
		t.Fatalf("third sync: %v\n%s", err, errb.String())
	}
	if strings.Contains(errb.String(), "no control socket") {
		t.Fatalf("the sync did not replace the stale socket:\n%s", errb.String())
	}
	if _, err := os.Stat(wh + ".sock"); err == nil {
		t.Fatal("the socket outlived the sync")
	}
	if readsDuring < 3 || last["invoices"] == 0 {
		t.Fatalf("%d reads during the third sync (rows seen %v): make it longer", readsDuring, last)
	}
	t.Logf("%d reads during the third sync, last counts %v", readsDuring, last)
}

// Through a running syncer serve, status, runs, query and export go through its control
// socket, not the PostgreSQL protocol: their output is byte-identical to what they print from
// the file after serve stopped, export works (staged in serve's Parquet directory, the only one
// its DuckDB may write to, when the target is elsewhere), and status says no sync is running.
func TestHolder_ServeAnswersReadsLikeTheFile(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "data", "warehouse.duckdb")
	cmd := exec.Command(bin, "serve", "--warehouse", wh, "--parquet-dir", filepath.Join(dir, "data", "parquet"),
		"--listen", "127.0.0.1:0", "--http", "off", "--every", "1h", "--sim-scale", "200")
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// The first (scheduled at start) sync has finished when status says none is running.
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, _, errOut := syncer(t, "status", "--warehouse", wh, "--format", "csv")
		if code == 0 && strings.Contains(errOut, "note: syncer serve (pid "+strconv.Itoa(cmd.Process.Pid)+")") && strings.Contains(errOut, "no sync is running now") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve's first sync did not finish: exit %d %s\n%s", code, errOut, stderr.String())
		}
	}
	reads := [][]string{{"status"}, {"status", "--format", "json"}, {"runs", "--format", "csv"}, {"runs"},
		{"query", "lead_funnel", "--format", "json"}, {"query", "SELECT * FROM invoices ORDER BY 1", "--format", "jsonl"},
		{"query", "SELECT * FROM users ORDER BY 1", "--format", "csv"}, {"query", "SELECT * FROM leads ORDER BY 1"}}
	during := make([]string, len(reads))
	for i, r := range reads {
		code, out, errOut := syncer(t, append(r, "--warehouse", wh)...)
		if code != 0 {
			t.Fatalf("%v through serve: exit %d %s", r, code, errOut)
		}
		during[i] = out
	}
	for _, to := range []string{filepath.Join(dir, "export"), filepath.Join(dir, "data", "parquet")} {
		if code, out, errOut := syncer(t, "export", "--warehouse", wh, "--parquet-dir", to); code != 0 || !strings.Contains(out, "exported 8 tables") {
			t.Fatalf("export to %s through serve: exit %d %s %s", to, code, out, errOut)
		}
	}
	if code, _, errOut := syncer(t, "query", "DELETE FROM invoices", "--warehouse", wh); code != exitUsage || !strings.Contains(errOut, "only a read") {
		t.Fatalf("a write through serve's socket: exit %d %s", code, errOut)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(wh + ".sock"); err == nil {
		t.Fatal("serve left its control socket")
	}
	for i, r := range reads {
		code, out, errOut := syncer(t, append(r, "--warehouse", wh)...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", r, code, errOut)
		}
		if out != during[i] && r[0] != "status" { // status: minutes since success may have turned
			t.Errorf("%v through serve differs from the file read after it stopped:\n%s\nafter:\n%s", r, during[i], out)
		}
	}
	ldb, err := load.OpenReadOnly(t.Context(), wh)
	if err != nil {
		t.Fatal(err)
	}
	defer ldb.Close()
	for _, to := range []string{filepath.Join(dir, "export"), filepath.Join(dir, "data", "parquet")} {
		for _, tb := range schemas.Tables {
			var inDB, inPQ int64
			_ = ldb.QueryRow("SELECT count(*) FROM " + tb.Name).Scan(&inDB)
			q := fmt.Sprintf("SELECT count(*) FROM read_parquet('%s/%s/*/*.parquet', hive_partitioning=true)", to, tb.Name)
			if err := ldb.QueryRow(q).Scan(&inPQ); err != nil || inPQ != inDB || inDB == 0 {
				t.Errorf("%s/%s: parquet %d rows (%v), duckdb %d", to, tb.Name, inPQ, err, inDB)
			}
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "data", "parquet")); len(entries) != len(schemas.Tables) {
		t.Errorf("serve's Parquet directory holds %d entries (staging left behind?), want %d tables", len(entries), len(schemas.Tables))
	}
}

// A scheduled sync that starts while a reader holds the file (an export, a duckdb shell that is
// about to close) waits for it a few seconds instead of failing at once with "locked".
func TestSync_WaitsForAReaderThatIsAboutToReleaseTheWarehouse(t *testing.T) {
	s := startSim(t, apisim.Config{Seed: 12, Scale: 200, Profile: "fast"})
	setSecrets(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "w.duckdb")
	cfg := writeConfig(t, dir, s, func(c string) string { return c })
	if code, _, errOut := runBin(t, "sync", "--config", cfg, "--progress", "never", "--streams", "companies"); code != 0 {
		t.Fatalf("first sync: exit %d\n%s", code, errOut)
	}
	reader, err := load.OpenReadOnly(t.Context(), wh)
	if err != nil {
		t.Fatal(err)
	}
	// The reader lets go once the sync says it waits (a timer raced a slow process start: the
	// reader was gone before the sync looked), or after 20 s, which the sync's wait outlasts
	// only if it never logged.
	cmd := exec.Command(binary(t), "sync", "--config", cfg, "--progress", "never", "--streams", "companies")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	release := time.AfterFunc(20*time.Second, func() { reader.Close() })
	var errOut strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		errOut.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "waiting for it") && release.Stop() {
			reader.Close()
		}
	}
	err = cmd.Wait()
	if err != nil || !strings.Contains(errOut.String(), "waiting for it") {
		t.Fatalf("a sync behind a reader: %v, want exit 0 after a logged wait\n%s", err, errOut.String())
	}
}
