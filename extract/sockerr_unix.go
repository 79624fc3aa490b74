//go:build unix

package extract

import (
	"net"
	"syscall"
)

// resetPending reports whether the kernel holds a reset for c's socket (SO_ERROR ECONNRESET,
// or EPIPE: a reset after the peer's FIN). A server answers data it never read with one.
func resetPending(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var soErr int
	if err := raw.Control(func(fd uintptr) { soErr, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR) }); err != nil {
		return false
	}
	return soErr == int(syscall.ECONNRESET) || soErr == int(syscall.EPIPE)
}
