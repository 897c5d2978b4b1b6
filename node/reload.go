package node

import (
	"errors"
	"fmt"
)

// Reload re-reads what the node loaded from files, so that an operator can
// replace them without a restart; the daemon calls it on SIGHUP:
//
//   - the TLS certificate chain, key and CA certificates: new connections
//     get the new ones, established connections keep those they began with;
//   - the credentials files of SASL (SASLPasswordFile) and of ASCII
//     authentication (AuthFile): authentications from then on are checked
//     against the new file, connections already authenticated stay so;
//   - the gossip key file (ClusterConfig.GossipKeyFile), which memberlist's
//     keyring follows in place, so that keys rotate without downtime.
//
// Each component reloads on its own. One whose files are missing or bad
// keeps what it had, and Reload returns its error (for TLS, wrapping a
// *TLSFileError); the errors of several are joined. Without anything to
// reload, Reload returns nil. It is safe for concurrent use.
func (s *Server) Reload() error {
	var errs []error
	for _, r := range s.reloadables() {
		if err := r.reload(); err != nil {
			errs = append(errs, fmt.Errorf("node: reload %s: %w", r.name, err))
		}
	}
	return errors.Join(errs...)
}

// reloadable is one component Reload reloads.
type reloadable struct {
	name   string       // what it is, for errors
	reload func() error // loads it again, keeping the old on failure
}

// reloadables returns the components of s that Reload reloads, in order.
func (s *Server) reloadables() []reloadable {
	var rs []reloadable
	if s.tls != nil {
		rs = append(rs, reloadable{"TLS certificates", s.tls.Load})
	}
	for _, r := range s.commands.Reloaders() {
		rs = append(rs, reloadable{r.Name, r.Reload})
	}
	if s.cluster.Encrypted() {
		rs = append(rs, reloadable{"gossip keys", s.cluster.ReloadKeys})
	}
	return rs
}
