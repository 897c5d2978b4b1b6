// Package ring is the consistent-hash ring that memcluster's nodes and clients
// agree on, ElastiCache's Auto Discovery format (`config get cluster`), and a
// gomemcache ServerSelector that follows the cluster by polling it.
//
// # The ring
//
// A Ring is an immutable snapshot built by New from a member list. Members are
// sorted by Name, so the same members give the same ring whatever order they
// were learned in. Each member owns VirtualNodes points on a 2^48 circle: point
// i of a member is the top 48 bits of xxhash64(Name + "-" + decimal(i)). A key
// is placed at the top 48 bits of xxhash64(key) and belongs to the member whose
// point is nearest to it on the circle, in either direction (ties go to the
// point clockwise of the key; two members with a point at the same place keep
// it for the one whose Name sorts first).
//
// Owning the nearest point rather than the next one clockwise is what makes
// the ring balanced with few points: a member's share is the sum of half the
// gaps either side of its points instead of the one gap before each, which
// halves the variance of the share. It keeps the one property that matters: a
// key's owner is the minimum of a fixed order over all points, so adding a
// member can only move keys to it and removing one can only move its own keys;
// no key ever moves between two members that both stayed.
//
// A lookup hashes the key, reads one slot of a table indexed by the top bits
// of the hash (about one point per slot), and compares the two points either
// side of the key: a constant number of memory reads, with no allocation.
//
// # Measured
//
// With VirtualNodes = 2048, by ring_test.go (go test -v -run 'Balance|Movement'
// prints them) for two families of member names, 3 to 100 members each, and
// on a 2-core Xeon:
//
//   - peak/mean load is at most 1.055 over every member count from 3 to 100,
//     counting each member's exact share of the circle, and at most 1.054
//     over 1M random keys (TestBalance asserts 1.10). Over 24 further
//     families of names (measured once, outside the tests) the worst exact
//     figure was 1.064;
//   - a join moves at most 1.039 times the ideal share 1/(n+1), and a leave,
//     of whichever member, at most 1.055 times 1/n, exactly; over 1M keys
//     1.018 and 1.014. No key ever moves between two members that both
//     stayed (TestMovement asserts 1.10 and none);
//   - Owner takes about 32 ns at 3 or 10 members and 47 to 53 ns at 100, with
//     0 allocations (BenchmarkOwner; TestOwnerSpeed asserts 100 ns);
//     Selector.PickServer about 46 ns, 0 allocations;
//   - a 100-member ring holds 204,800 points in 2.7 MB and New builds it in
//     about 7 ms.
//
// The scheme was chosen by those measurements. Classic vnodes, where the next
// point clockwise owns a key, need about twice the points for the same
// balance: 2048 of them reached 1.093 on the same 24 families, 1024 reached
// 1.145. Jump hash is balanced with no table but moves keys between surviving
// members whenever any member but the last leaves; bounded-load variants move
// keys between surviving members as loads shift. Rendezvous hashing moves
// keys as minimally, but scores every member on every lookup: 148 ns at 100
// members even with a multiply-shift mixer in place of a hash per member.
//
// # Modes
//
// The scheme above is ModeMemcluster, the default. A Ring built by NewMode
// with ModeKetama places keys as libmemcached's ketama does instead (see
// ModeKetama), over the same members in the same Name order, so that
// clients that know nothing of this package, given the servers of `config
// get cluster`, send each key to the node that owns it. Every method of a
// Ring works the same in both modes.
//
// # Names shared by nodes and clients
//
// Nodes and clients agree on owners only if they build their rings from the
// same Names. The Auto Discovery reply carries no names, only
// host|ip|port, so ParseClusterConfig names each member by that entry
// (Member.Entry), and New names a member whose Name is empty the same way. A
// node that answers `config get cluster` and `config get owner` agrees with
// every client as long as it leaves Name empty (or sets it to Entry()).
package ring

import (
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// VirtualNodes is the number of points each member owns on the ring. It is
// part of the ring's definition: every node and client must use the same.
const VirtualNodes = 2048

// MaxMembers is the most members a Ring, or a cluster config, may hold.
const MaxMembers = 1024

// Limits on a member's fields, in bytes.
const (
	MaxHostLen = 255
	MaxIPLen   = 64
)

const (
	ownerBits = 16
	ownerMask = 1<<ownerBits - 1
)

// ErrInvalidMember is returned, wrapped, by New and Member.Validate for a
// member that cannot be placed on the ring or written in a cluster config.
var ErrInvalidMember = errors.New("ring: invalid member")

// Member is one node of the cluster: the name that places it on the ring and
// the memcached address clients reach it at. It is a comparable value; its
// methods may be called concurrently.
type Member struct {
	// Name places the member on the ring and orders members. If empty, New
	// and FormatClusterConfig use Entry(), which is what
	// ParseClusterConfig sets.
	Name string
	// Host is the node's host name; it may be empty if IP is set.
	Host string
	// IP is the node's IP address in text form; it may be empty if Host is
	// set.
	IP string
	// Port is the node's memcached TCP port, 1 to 65535.
	Port int
}

// Entry returns the member's Auto Discovery entry, host|ip|port.
func (m Member) Entry() string {
	return m.Host + "|" + m.IP + "|" + strconv.Itoa(m.Port)
}

// Addr returns the address to dial the member at, host:port, preferring the
// IP to the host name as ElastiCache's clients do.
func (m Member) Addr() string {
	h := m.IP
	if h == "" {
		h = m.Host
	}
	return net.JoinHostPort(h, strconv.Itoa(m.Port))
}

// key returns the name the ring places m by.
func (m Member) key() string {
	if m.Name == "" {
		return m.Entry()
	}
	return m.Name
}

// Validate reports whether m can be placed on a ring and written in a
// cluster config: Host and IP printable ASCII without spaces or '|', not both
// empty, within MaxHostLen and MaxIPLen; IP, if set, an IP address; Port
// within 1 to 65535. Errors wrap ErrInvalidMember.
func (m Member) Validate() error {
	if m.Host == "" && m.IP == "" {
		return fmt.Errorf("%w: %q: no host and no ip", ErrInvalidMember, m.Entry())
	}
	if len(m.Host) > MaxHostLen || !entryField(m.Host) {
		return fmt.Errorf("%w: bad host %q", ErrInvalidMember, m.Host)
	}
	if m.IP != "" {
		if len(m.IP) > MaxIPLen || !entryField(m.IP) {
			return fmt.Errorf("%w: bad ip %q", ErrInvalidMember, m.IP)
		}
		if _, err := netip.ParseAddr(m.IP); err != nil {
			return fmt.Errorf("%w: bad ip %q", ErrInvalidMember, m.IP)
		}
	}
	if m.Port < 1 || m.Port > 65535 {
		return fmt.Errorf("%w: bad port %d", ErrInvalidMember, m.Port)
	}
	return nil
}

// entryField reports whether s may stand in a host|ip|port entry.
func entryField(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '|' {
			return false
		}
	}
	return true
}

// Ring is an immutable consistent-hash ring: a snapshot of the cluster's
// members and the points they own. Build one with New. A Ring is safe for
// concurrent use by any number of goroutines. The nil *Ring and the zero Ring
// are empty rings.
type Ring struct {
	members []Member // sorted by Name, Names filled in
	mode    Mode     // ModeMemcluster or ModeKetama
	// ketama are the points of a ModeKetama ring, sorted: the point's
	// value (top 32 bits) and its owner's index in members (low 32).
	// The fields below are then unused.
	ketama []uint64
	// entries are the points, sorted: the position (top 48 bits) ORed
	// with the owner's index in members (low 16 bits). Positions are
	// unique.
	entries []uint64
	// index[b] is the first entry whose top bits are b, for the top
	// 64-shift bits of a position; index[len(index)-1] = len(entries).
	index []uint32
	shift uint
}

// New builds the ring of members in ModeMemcluster. The order of members
// does not matter; members with an empty Name are named by their Entry().
// New returns an error wrapping ErrInvalidMember if a member fails
// Validate, if two members share a Name, or if there are more than
// MaxMembers. New does not keep members.
func New(members []Member) (*Ring, error) { return NewMode(members, ModeMemcluster) }

// NewMode is New for a ring in mode: ModeMemcluster (also for the zero
// Mode) or ModeKetama. It returns an error for any other mode.
func NewMode(members []Member, mode Mode) (*Ring, error) {
	if !mode.valid() {
		return nil, fmt.Errorf("ring: unknown ring mode %d", mode)
	}
	if mode == 0 {
		mode = ModeMemcluster
	}
	if len(members) > MaxMembers {
		return nil, fmt.Errorf("%w: %d members, at most %d", ErrInvalidMember, len(members), MaxMembers)
	}
	ms := slices.Clone(members)
	for i := range ms {
		if err := ms[i].Validate(); err != nil {
			return nil, err
		}
		ms[i].Name = ms[i].key()
	}
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(ms); i++ {
		if ms[i].Name == ms[i-1].Name {
			return nil, fmt.Errorf("%w: two members named %q", ErrInvalidMember, ms[i].Name)
		}
	}
	r := &Ring{members: ms, mode: mode}
	if len(ms) == 0 {
		return r, nil
	}
	if mode == ModeKetama {
		r.buildKetama()
		return r, nil
	}

	raw := make([]uint64, len(ms)*VirtualNodes)
	var buf []byte
	k := 0
	for o, m := range ms {
		// buf holds Name-i; the decimal i counts up in place.
		buf = append(append(buf[:0], m.Name...), '-', '0')
		l := len(buf) - 1
		for range VirtualNodes {
			raw[k] = xxhash.Sum64(buf)&^ownerMask | uint64(o)
			k++
			j := len(buf) - 1
			for j >= l && buf[j] == '9' {
				buf[j] = '0'
				j--
			}
			if j >= l {
				buf[j]++
			} else {
				buf[l] = '1'
				buf = append(buf, '0')
			}
		}
	}

	r.build(raw)
	return r, nil
}

// build sorts raw, the points of every member, into r.entries and r.index.
// A point whose position another member's point holds too goes to the member
// listed first, that is whose Name sorts first. build does not keep raw.
func (r *Ring) build(raw []uint64) {
	n := len(raw)
	b := bits.Len(uint(n - 1)) // 2^b slots: at most one point per slot on average
	r.shift = uint(64 - b)

	// Counting sort by slot, then insertion sort within each slot (about
	// one point each), then drop points at a position already taken by a
	// member whose Name sorts first.
	index := make([]uint32, 1<<b+1)
	for _, e := range raw {
		index[e>>r.shift+1]++
	}
	for i := 1; i < len(index); i++ {
		index[i] += index[i-1]
	}
	sorted := make([]uint64, n)
	for _, e := range raw {
		s := e >> r.shift
		sorted[index[s]] = e
		index[s]++
	}
	copy(index[1:], index[:len(index)-1])
	index[0] = 0
	w := 0
	for s := 0; s < len(index)-1; s++ {
		lo, hi := int(index[s]), int(index[s+1])
		bucket := sorted[lo:hi]
		for i := 1; i < len(bucket); i++ {
			for j := i; j > 0 && bucket[j] < bucket[j-1]; j-- {
				bucket[j], bucket[j-1] = bucket[j-1], bucket[j]
			}
		}
		index[s] = uint32(w)
		for j, e := range bucket {
			if j > 0 && e&^ownerMask == sorted[w-1]&^ownerMask {
				continue
			}
			sorted[w] = e
			w++
		}
	}
	index[len(index)-1] = uint32(w)
	r.entries = sorted[:w:w]
	r.index = index
}

// Mode returns the ring's mode: ModeMemcluster for the nil and the zero
// Ring.
func (r *Ring) Mode() Mode {
	if r == nil || r.mode == 0 {
		return ModeMemcluster
	}
	return r.mode
}

// Rebuild returns a ring of members in r's mode (see NewMode): the ring
// that follows r when the members change.
func (r *Ring) Rebuild(members []Member) (*Ring, error) { return NewMode(members, r.Mode()) }

// Len returns the number of members.
func (r *Ring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.members)
}

// Member returns the i'th member in Name order, 0 <= i < Len(), with its
// Name filled in.
func (r *Ring) Member(i int) Member { return r.members[i] }

// Members returns a copy of the members in Name order, Names filled in.
func (r *Ring) Members() []Member {
	if r == nil {
		return nil
	}
	return slices.Clone(r.members)
}

// Owner returns the member that owns key, or the zero Member if the ring is
// empty. It does not allocate and does not keep key.
func (r *Ring) Owner(key []byte) Member {
	if i := r.OwnerIndex(key); i >= 0 {
		return r.members[i]
	}
	return Member{}
}

// OwnerString is Owner for a string key.
func (r *Ring) OwnerString(key string) Member {
	if i := r.OwnerIndexString(key); i >= 0 {
		return r.members[i]
	}
	return Member{}
}

// OwnerIndex returns the index in Members of the member that owns key, or -1
// if the ring is empty. It does not allocate and does not keep key.
func (r *Ring) OwnerIndex(key []byte) int {
	if r == nil || len(r.members) == 0 {
		return -1
	}
	if r.mode == ModeKetama {
		return r.ketamaOwner(oneAtATime(key))
	}
	return r.owner(xxhash.Sum64(key))
}

// OwnerIndexString is OwnerIndex for a string key.
func (r *Ring) OwnerIndexString(key string) int {
	if r == nil || len(r.members) == 0 {
		return -1
	}
	if r.mode == ModeKetama {
		return r.ketamaOwner(oneAtATime(key))
	}
	return r.owner(xxhash.Sum64String(key))
}

// owner returns the index of the member owning the point nearest to hash h.
// The ring must not be empty.
func (r *Ring) owner(h uint64) int {
	t := h &^ ownerMask
	s := h >> r.shift
	i, hi := int(r.index[s]), int(r.index[s+1])
	for i < hi && r.entries[i] < t {
		i++
	}
	// entries[i] is the first point at or clockwise of t, wrapping.
	n := len(r.entries)
	succ, pred := i, i-1
	if succ == n {
		succ = 0
	}
	if pred < 0 {
		pred = n - 1
	}
	se, pe := r.entries[succ], r.entries[pred]
	// Distances around the circle; uint64 arithmetic wraps as the circle
	// does.
	if se&^ownerMask-t <= t-pe&^ownerMask {
		return int(se & ownerMask)
	}
	return int(pe & ownerMask)
}

// Shares returns the fraction of the key space each member owns, indexed
// as Members: a key's hash falls in a member's arcs of the circle with that
// probability. They sum to 1 (0 for an empty ring).
func (r *Ring) Shares() []float64 {
	if r == nil || len(r.members) == 0 {
		return nil
	}
	shares := make([]float64, len(r.members))
	if len(r.members) == 1 {
		shares[0] = 1
		return shares
	}
	if r.mode == ModeKetama {
		// A point owns the hashes after the point before it, up to
		// itself; of points at one value, the first listed owns them.
		n := len(r.ketama)
		for j, p := range r.ketama {
			prev := uint32(r.ketama[(j+n-1)%n] >> 32)
			shares[uint32(p)] += float64(uint32(p>>32)-prev) / (1 << 32)
		}
		return shares
	}
	// A point owns the positions nearer to it than to either neighbour:
	// half the gap on each side.
	n := len(r.entries)
	if n == 1 {
		shares[r.entries[0]&ownerMask] = 1
		return shares
	}
	for j, e := range r.entries {
		prev, next := r.entries[(j+n-1)%n]&^ownerMask, r.entries[(j+1)%n]&^ownerMask
		shares[e&ownerMask] += float64(next-prev) / 2 / (1 << 64)
	}
	return shares
}
