package vaultproc

import (
	"fmt"
	"net"
	"testing"
)

func TestFreePortBlock(t *testing.T) {
	for _, n := range []int{1, 2, 6} {
		base, err := FreePortBlock(n)
		if err != nil {
			t.Fatalf("FreePortBlock(%d): %v", n, err)
		}
		for i := 0; i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				t.Fatalf("FreePortBlock(%d) = %d; port %d is not free: %v", n, base, base+i, err)
			}
			l.Close()
		}
	}
	if _, err := FreePortBlock(0); err == nil {
		t.Fatal("FreePortBlock(0) succeeded")
	}
}

// TestFreePortPairs checks that FreePort's port and its successor are both
// free, while the pairs it returned before are held.
func TestFreePortPairs(t *testing.T) {
	for i := 0; i < 20; i++ {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		next, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		if err != nil {
			t.Fatalf("FreePort = %d, but %d is taken: %v", p, p+1, err)
		}
		defer next.Close()
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("FreePort = %d, not free: %v", p, err)
		}
		defer l.Close()
	}
}
