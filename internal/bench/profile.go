package bench

import (
	"os"
	"os/exec"
)

func createTemp(pattern string) (*os.File, error) { return os.CreateTemp("", pattern) }

// pprofTop returns `go tool pprof -top` of a profile of this binary ("" if go is unavailable).
func pprofTop(prof string) string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=12", exe, prof).Output()
	if err != nil {
		return ""
	}
	return string(out)
}
