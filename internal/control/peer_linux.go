package control

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// checkPeer refuses a client of another user (the socket's mode already does; root can bypass
// modes, so its uid is checked too).
func checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("control socket: reading the client's credentials: %w", cerr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("control socket: uid %d may not read this warehouse: only its owner (uid %d) may", cred.Uid, os.Getuid())
	}
	return nil
}
