package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to reach a running serve (reset's check)

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/marketsync/marketsync/apisim"
	"github.com/marketsync/marketsync/config"
	"github.com/marketsync/marketsync/pipeline"
	"github.com/marketsync/marketsync/serve"
)

// Demo credentials of `syncer serve` without --config (loopback only).
const (
	demoServeUser     = "marketsync"
	demoServePassword = "marketsync-demo"
)

// serveAddrFile is written next to the warehouse while serve owns it, so that `syncer reset`
// (and tests) can reach the running server (reads use the control socket, holder.go): its
// address and a random password of the local user serveCLIUser, readable by the warehouse's
// owner only (like the warehouse itself).
const (
	serveAddrFile = "serve.addr"
	serveCLIUser  = "_syncer_cli"
)

// openServeDB opens the running serve that owns the warehouse at path, through its
// serve.addr file, as a database/sql handle (the pgx driver); an error if none runs.
func openServeDB(ctx context.Context, path string) (*sql.DB, error) {
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(path), serveAddrFile))
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 3 {
		return nil, fmt.Errorf("%s is not a serve address file", serveAddrFile)
	}
	host, port, err := net.SplitHostPort(lines[0])
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(lines[1], lines[2]), Host: net.JoinHostPort(host, port),
		Path: "/marketsync", RawQuery: "sslmode=prefer&connect_timeout=5"}
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("reaching the running syncer serve at %s: %w", lines[0], err)
	}
	return db, nil
}

func randomPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "serve [--config FILE] [--listen ADDR] [--http ADDR] [--every 15m | --cron \"*/15 * * * *\"]", stdout)
	cfgPath := fs.String("config", "", "YAML config `file` (its serve section lists users); without it, a demo on the embedded simulator")
	listen := fs.String("listen", "", "PostgreSQL protocol listen `address` (default "+config.DefaultServeListen+")")
	httpAddr := fs.String("http", "", "/healthz and /metrics listen `address` (default "+config.DefaultServeHTTP+"; off for none)")
	every := new(config.Duration)
	fs.Var(every, "every", "sync every `interval`, e.g. 15m, 6h or 1d (default 15m)")
	cronExpr := fs.String("cron", "", "sync on a 5-field cron `schedule` instead, e.g. \"*/15 * * * *\"")
	warehouse := fs.String("warehouse", "", "DuckDB warehouse `path` (default "+config.DefaultWarehouse+")")
	parquetDir := fs.String("parquet-dir", "", "Parquet output `dir` (default "+config.DefaultParquetDir+"; \"-\" for none)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	simScale := fs.Int("sim-scale", demoScale, "embedded simulator: rows per stream")
	simSeed := fs.Int64("sim-seed", 42, "embedded simulator: data seed")
	simStart := fs.String("sim-start", "now", "embedded simulator: its clock's `time` (RFC 3339, or now)")
	simBackground := fs.Float64("sim-background", 60, "embedded simulator: simulated seconds of changes per real second (so each sync has news)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *every != 0 && *cronExpr != "" {
		return usagef("--every and --cron: choose one")
	}
	if *cronExpr != "" {
		if err := serve.ParseCron(*cronExpr); err != nil {
			return usagef("--cron %q: %v", *cronExpr, err)
		}
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	var file *config.File
	if *cfgPath != "" {
		if file, err = config.Load(*cfgPath); err != nil {
			return err
		}
		if err := file.ValidateServe(); err != nil {
			return err
		}
	} else {
		start, err := parseSimStart(*simStart)
		if err != nil {
			return err
		}
		sim, err := apisim.New(apisim.Config{Seed: *simSeed, Scale: *simScale, Profile: "realistic", Speed: demoSpeed, Start: start, LinkBase: apisim.DemoLinkBase, Background: *simBackground})
		if err != nil {
			return usagef("%v", err)
		}
		if err := sim.Start("127.0.0.1:0"); err != nil {
			return err
		}
		defer sim.Close()
		file = demoConfig(sim)
		file.Serve = &config.Serve{Users: []config.ServeUser{{Name: demoServeUser, Password: demoServePassword}}}
		file.Serve.SetDefaults()
		log.Info("no --config: serving a demo warehouse synced from the embedded API simulator",
			"user", demoServeUser, "password", demoServePassword)
	}
	sv := *file.Serve
	if *listen != "" {
		sv.Listen = *listen
	}
	if *httpAddr != "" {
		sv.HTTP = *httpAddr
	}
	if *every != 0 || *cronExpr != "" {
		sv.Every, sv.Cron = *every, *cronExpr
	}
	if err := sv.Validate(); err != nil {
		return usagef("%v", err)
	}

	pc := pipeline.Config{Log: log}
	applyFile(&pc, file)
	pc.DuckDBMemoryLimit = sv.MemoryLimit // each sync sets it for the whole instance
	if *warehouse != "" {
		pc.Warehouse = *warehouse
	}
	switch *parquetDir {
	case "":
	case "-":
		pc.ParquetDir = ""
	default:
		pc.ParquetDir = *parquetDir
	}

	var tlsCfg *tls.Config
	if sv.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(sv.TLSCert, sv.TLSKey)
		if err != nil {
			return &config.Error{Key: "serve.tls_cert", Msg: fmt.Sprintf("loading the certificate and key: %v", err)}
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	wh, err := serve.OpenWarehouse(ctx, pc.Warehouse, pc.ParquetDir)
	if err != nil {
		return err
	}
	defer wh.Close()
	// The syncs open the same path: duckdb-go's instance cache hands them this process's database.
	pc.Warehouse, pc.ParquetDir = wh.Path, wh.ParquetDir

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cliPassword := randomPassword()
	users := map[string]string{serveCLIUser: cliPassword}
	for _, u := range sv.Users {
		users[u.Name] = u.Password
	}
	srv, err := serve.NewServer(wh, serve.Config{Users: users, TLS: tlsCfg, RequireTLS: sv.RequireTLS,
		MaxConns: sv.MaxConnections, Log: log, Metrics: serve.NewMetrics(reg)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", sv.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sv.Listen, err)
	}
	sched := &serve.Scheduler{Schedule: serve.Schedule{Every: sv.Every.Std(), Cron: sv.Cron}, Log: log, Metrics: serve.NewSyncMetrics(reg),
		Run: func(ctx context.Context) (pipeline.Summary, error) { return pipeline.Run(ctx, pc) }}

	// Other processes' status, runs, query and export are answered on the control socket.
	hold, err := startHolder(ctx, wh.Path, "serve", log)
	if err != nil {
		ln.Close()
		return err
	}
	defer hold.close()
	if hold != nil {
		hold.restricted, hold.allowedDir = true, wh.ParquetDir
		hold.syncState = func() (bool, time.Time) { st := sched.Status(); return st.Running, st.LastStarted }
	}

	var httpSrv *http.Server
	httpErr := make(chan error, 1)
	if sv.HTTP != "off" {
		hln, err := net.Listen("tcp", sv.HTTP)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening on %s (--http): %w", sv.HTTP, err)
		}
		httpSrv = &http.Server{Handler: serve.HTTPHandler(reg, sched.Status), ReadHeaderTimeout: 10 * time.Second}
		go func() { httpErr <- httpSrv.Serve(hln) }()
		log.Info("health and metrics", "url", "http://"+hln.Addr().String()+"/metrics")
	}
	sqlErr := make(chan error, 1)
	go func() { sqlErr <- srv.Serve(ln) }()
	addrFile := filepath.Join(filepath.Dir(wh.Path), serveAddrFile)
	if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"+serveCLIUser+"\n"+cliPassword+"\n"), 0o600); err != nil {
		log.Warn("could not record the server address for syncer query/status", "file", addrFile, "error", err)
	}
	defer os.Remove(addrFile)
	schedule := sv.Every.String()
	if sv.Cron != "" {
		schedule = "cron " + sv.Cron
	}
	log.Info("serving the warehouse over the PostgreSQL protocol", "listen", ln.Addr().String(), "warehouse", wh.Path,
		"tls", tlsCfg != nil, "schedule", schedule)
	fmt.Fprintf(stdout, "syncer serve: postgres://%s@%s/marketsync (warehouse %s, syncs every %s)\n", sv.Users[0].Name, ln.Addr(), wh.Path, schedule)
	if err := sched.Start(ctx); err != nil {
		ln.Close()
		return err
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: closing listeners, letting the running sync commit")
	case runErr = <-sqlErr:
	case runErr = <-httpErr:
	}
	// Stop taking clients first, then let the running sync commit what it holds.
	closeErr := srv.Close()
	if httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = httpSrv.Shutdown(sctx)
		cancel()
	}
	sched.Stop()
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	st := sched.Status()
	log.Info("stopped", "syncs", st.Runs, "skipped", st.Skipped, "failed", st.Failed)
	return errors.Join(runErr, closeErr)
}
