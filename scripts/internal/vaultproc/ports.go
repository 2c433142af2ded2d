package vaultproc

import (
	"fmt"
	"net"
	"net/url"
	"time"
)

// FreePort returns a loopback TCP port that was free a moment ago and whose
// successor was free too: Vault puts its cluster listener on the port after
// its API port. Another process may take it before Vault binds it; StartDev
// and Persistent.Start pick again when that happens.
func FreePort() (int, error) {
	return FreePortBlock(2)
}

// FreePortBlock returns the first of n consecutive loopback TCP ports that
// were all free a moment ago.
func FreePortBlock(n int) (int, error) {
	if n < 1 {
		return 0, fmt.Errorf("a block of %d ports", n)
	}
	for try := 0; try < 50; try++ {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		base := first.Addr().(*net.TCPAddr).Port
		held := []net.Listener{first}
		ok := base+n-1 <= 65535
		for i := 1; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no block of %d free loopback ports", n)
}

// PortClosed reports nil once nothing accepts TCP connections at the host of
// rawURL (an empty URL names nothing, so nothing listens there), and an error
// saying what still listens otherwise: tests use it to prove that a stopped
// server let go of its port.
func PortClosed(rawURL string) error {
	if rawURL == "" {
		return nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return nil
	}
	c.Close()
	return fmt.Errorf("%s still accepts connections", u.Host)
}
