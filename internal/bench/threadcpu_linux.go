package bench

import "syscall"

// threadCPU returns the CPU time (user + system) the calling OS thread has used, in
// nanoseconds. The caller locks its goroutine to the thread.
func threadCPU() (int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
