package notebooksapi

import (
	"net/http"
	"testing"
)

// An IPv6 client counts by its /64 (one host usually holds all of it); IPv4 by its address.
func TestClientKey(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"192.0.2.7:41000", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:5000", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:6000", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:80", "::ffff:192.0.2.7"},
		{"not an address", "not an address"},
	} {
		if got := clientKey(&http.Request{RemoteAddr: tt.remote}); got != tt.want {
			t.Errorf("clientKey(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
