// Package bench measures marketsync side by side with baselines in one run on one machine and
// writes BENCHMARKS.md. Absolute times drift on shared machines; the ratios are the result.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/extract"
	"github.com/marketsync/marketsync/internal/simcheck"
	"github.com/marketsync/marketsync/pipeline"
)

// Options say how big to go.
type Options struct {
	Rows       int    // rows per stream for end to end and loader (1M for the record)
	BigRows    int    // rows for the memory measure's large run (10M for the record)
	Bin        string // the syncer binary, for measures that need separate processes ("" skips them)
	Dir        string // scratch directory
	Command    string // the command line, for the report
	Log        *slog.Logger
	CPUProfile bool
	Only       []string // measure names to run (empty: all)
	// Quick shrinks the measures that do not scale with Rows (calibration samples, repeats) so
	// the whole run takes seconds: the CI smoke test and `syncer bench --quick`.
	Quick bool
}

// Row is one line of the report.
type Row struct {
	Measure, Ours, Baseline, Ratio, Goal, Verdict, Notes string
}

// Report is everything measured in one run.
type Report struct {
	Started  time.Time
	Took     time.Duration
	Machine  string
	Command  string
	Load     string // the machine's 1-minute load average over the run
	Steps    []string
	Rows     []Row
	Profiles []string // pprof top entries, per measure
	Details  []string
}

func (r *Report) add(row Row) { r.Rows = append(r.Rows, row) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1] + " kB RAM"
	}
	return fmt.Sprintf("%s, %d cores, %s, %s %s/%s", cpu, runtime.NumCPU(), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Run performs every measure and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	rep := &Report{Started: time.Now().UTC(), Machine: machine(), Command: o.Command}
	sampler := startLoadSampler()
	defer func() {
		rep.Took = time.Since(rep.Started)
		rep.Load = sampler.stop().String()
	}()
	steps := []struct {
		name string
		fn   func(context.Context, Options, *Report) error
	}{
		{"transform", benchTransform},
		{"loader", benchLoader},
		{"end to end", benchEndToEnd},
		{"rate budget", benchRateBudget},
		{"incremental", benchIncremental},
		{"parquet", benchParquet},
		{"memory", benchMemory},
		{"simulator", benchSimulator},
	}
	for _, s := range steps {
		if len(o.Only) > 0 && !slices.Contains(o.Only, s.name) {
			continue
		}
		o.Log.Info("bench: measuring", "measure", s.name)
		start := time.Now()
		mark := sampler.mark()
		if err := s.fn(ctx, o, rep); err != nil {
			return rep, fmt.Errorf("bench %s: %w", s.name, err)
		}
		took := time.Since(start).Round(time.Millisecond)
		rep.Steps = append(rep.Steps, fmt.Sprintf("%s: %s, load average %s", s.name, took.Round(100*time.Millisecond), sampler.since(mark)))
		o.Log.Info("bench: done", "measure", s.name, "took", took)
	}
	return rep, nil
}

func startSim(cfg apisim.Config) (*apisim.Server, error) {
	s, err := apisim.New(cfg)
	if err != nil {
		return nil, err
	}
	return s, s.Start("127.0.0.1:0")
}

// syncConfig returns a pipeline config against sim (rate limits scaled by speed; speed <= 0:
// no client-side limits).
func syncConfig(sim *apisim.Server, speed float64, dir string, log *slog.Logger) pipeline.Config {
	ad, hl := simcheck.Sources(sim, max(speed, 1))
	if speed <= 0 {
		ad.RatePerSecond, ad.CompaniesRate = -1, -1
		hl.Burst, hl.Interval = 1_000_000, time.Second
	}
	return pipeline.Config{AppDirect: ad, HighLevel: hl, Warehouse: filepath.Join(dir, "warehouse.duckdb"),
		ParquetDir: filepath.Join(dir, "parquet"), Log: log, Retry: extract.RetryPolicy{InitialInterval: 20 * time.Millisecond}}
}

func mb(b int64) float64 { return float64(b) / 1e6 }

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}
