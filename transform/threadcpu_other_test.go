//go:build !linux

package transform

// threadCPU is not measured off Linux (the benchmark then reports no cpuMB/s).
func threadCPU() int64 { return 0 }
