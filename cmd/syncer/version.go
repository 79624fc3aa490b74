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
	fmt.Fprintf(stdout, "syncer %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
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
