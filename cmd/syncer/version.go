package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("version", "version", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "syncer %s (%s, %s/%s)\n", buildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/duckdb/duckdb-go/v2", "github.com/apache/arrow-go/v18":
				fmt.Fprintf(stdout, "  %s %s\n", d.Path, d.Version)
			}
		}
	}
	return nil
}

// buildVersion is the -ldflags version if set, else what the Go toolchain recorded: the module
// version of a `go install`, or the VCS revision (with +dirty) of a build from a checkout.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return version
	}
	return "dev-" + rev[:min(12, len(rev))] + dirty
}
