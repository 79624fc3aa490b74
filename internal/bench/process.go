package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/pipeline"
)

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// simProcess runs `syncer simulate` as its own process, so its memory is not the syncer's.
func simProcess(ctx context.Context, bin string, scale int, profile string) (*exec.Cmd, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.CommandContext(ctx, bin, "simulate", "--addr", addr, "--scale", strconv.Itoa(scale), "--profile", profile, "--locations", "4")
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	for i := 0; i < 200; i++ {
		if res, err := http.Get(base + "/_sim/stats"); err == nil {
			res.Body.Close()
			return cmd, base, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, "", fmt.Errorf("simulator on %s did not start", addr)
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func procRSS(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmRSS:":
				rss = v * 1024
			case "VmHWM:":
				hwm = v * 1024
			}
		}
	}
	return
}

// benchMemory: peak RSS of `syncer sync` (its own process; the simulator runs in another)
// syncing N vs 10N users.
func benchMemory(ctx context.Context, o Options, rep *Report) error {
	if o.Bin == "" {
		return nil
	}
	var rss [2]int64
	var took [2]time.Duration
	sizes := []int{o.Rows, o.BigRows}
	for k, n := range sizes {
		sim, base, err := simProcess(ctx, o.Bin, n, "fast")
		if err != nil {
			return err
		}
		dir := filepath.Join(o.Dir, fmt.Sprintf("memory-%d", n))
		_ = os.MkdirAll(dir, 0o700)
		cfgPath := filepath.Join(dir, "config.yaml")
		cfg := fmt.Sprintf(`warehouse: %[1]s/w.duckdb
parquet_dir: %[1]s/parquet
streams: [users]
sources:
  appdirect:
    base_url: %[2]s
    client_id: %[3]s
    client_secret: %[4]s
    rate_per_second: -1
    companies_rate_per_second: -1
`, dir, base, apisim.DemoClientID, apisim.DemoClientSecret)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			stop(sim)
			return err
		}
		cmd := exec.CommandContext(ctx, o.Bin, "sync", "--config", cfgPath, "--progress", "never", "--log-level", "warn")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Start(); err != nil {
			stop(sim)
			return err
		}
		// The child's own peak (VmHWM), polled until it exits: rusage's maxrss would include the
		// pages this (large) benchmark process shared with the child when it was forked.
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var peak int64
	poll:
		for {
			if _, hwm := procRSS(cmd.Process.Pid); hwm > peak {
				peak = hwm
			}
			select {
			case err = <-done:
				break poll
			case <-time.After(20 * time.Millisecond):
			}
		}
		took[k] = time.Since(start)
		stop(sim)
		if err != nil {
			return fmt.Errorf("sync of %d users: %v\n%s", n, err, out.String())
		}
		rss[k] = peak
	}
	r := float64(rss[1]) / float64(rss[0])
	rep.add(Row{Measure: fmt.Sprintf("Memory: peak RSS of syncer syncing %d vs %d users (simulator in its own process)", sizes[0], sizes[1]),
		Ours:     fmt.Sprintf("%.0f MB vs %.0f MB", mb(rss[0]), mb(rss[1])),
		Baseline: fmt.Sprintf("the %d-row run", sizes[0]), Ratio: fmt.Sprintf("%.2f", r),
		Goal: "<= 256 MB each, ratio <= 1.1", Verdict: verdict(r <= 1.1 && rss[0] <= 256<<20 && rss[1] <= 256<<20),
		Notes: fmt.Sprintf("default settings (DuckDB memory_limit %s, Go heap soft limit 192 MiB, %d MiB of records in flight, 25k-row batches); took %.1f s and %.1f s (users over loopback HTTP, Parquet included)", pipeline.DefaultDuckDBMemoryLimit, pipeline.DefaultInFlightBytes>>20, took[0].Seconds(), took[1].Seconds())})
	return nil
}

func token(u, form string, basic bool) (string, error) {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(apisim.DemoClientID, apisim.DemoClientSecret)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("token from %s: status %d, %v", u, res.StatusCode, err)
	}
	return tr.AccessToken, nil
}

func ioDiscard(res *http.Response) (int64, error) {
	defer res.Body.Close()
	return io.Copy(io.Discard, res.Body)
}

// benchSimulator: first-page latency per stream and simulator RSS at N and 10M rows.
func benchSimulator(ctx context.Context, o Options, rep *Report) error {
	if o.Bin == "" {
		return nil
	}
	for _, n := range []int{o.Rows, max(o.BigRows, 10_000_000)} {
		sim, base, err := simProcess(ctx, o.Bin, n, "fast")
		if err != nil {
			return err
		}
		adTok, err1 := token(base+"/oauth2/token", "grant_type=client_credentials&scope=ROLE_PARTNER_READ", true)
		userTok, err2 := token(base+"/oauth2/token", "grant_type=password&username="+apisim.DemoLeadUser+"&password="+apisim.DemoLeadPassword+"&scope=ROLE_RESELLER_MANAGER", true)
		if err := firstErr(err1, err2); err != nil {
			stop(sim)
			return err
		}
		paths := map[string]string{
			"companies": "/api/account/v2/companies?page=0&size=250", "users": "/api/account/v2/users?page=0&size=250",
			"invoices": "/api/billing/v1/invoices?start=0&count=250", "opportunities": "/api/assistedSales/v1/opportunities?number=1&size=250",
			"leads": "/api/lead/v2/leads?context=RESELLER_MANAGER&companyId=x&page=0&size=250",
		}
		var worst time.Duration
		worstName := ""
		for name, p := range paths {
			req, _ := http.NewRequest("GET", base+p, nil)
			req.Header.Set("Authorization", "Bearer "+map[bool]string{true: userTok, false: adTok}[name == "leads"])
			req.Header.Set("Accept-Language", "en-US")
			start := time.Now()
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				stop(sim)
				return err
			}
			_, _ = ioDiscard(res)
			if d := time.Since(start); d > worst {
				worst, worstName = d, name
			}
			if res.StatusCode != 200 {
				stop(sim)
				return fmt.Errorf("%s first page: HTTP %d", name, res.StatusCode)
			}
		}
		_, hwm := procRSS(sim.Process.Pid)
		stop(sim)
		rep.add(Row{Measure: fmt.Sprintf("Simulator at %d rows per stream: first page, slowest stream; peak RSS", n),
			Ours: fmt.Sprintf("%s (%s); %.0f MB", worst.Round(time.Microsecond), worstName, mb(hwm)), Baseline: "-", Ratio: "-",
			Goal: "first page < 1 s; memory flat in scale", Verdict: verdict(worst < time.Second), Notes: "row i is computed on demand"})
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
