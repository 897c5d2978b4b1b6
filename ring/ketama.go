package ring

import (
	"crypto/md5"
	"encoding/binary"
	"slices"
	"strconv"
)

// KetamaMode is a flavour of ketama placement, as libmemcached computes it
// (the clients ElastiCache's Auto Discovery and libmemcached-based clients
// use), which clients that know nothing of memcluster's ring already apply
// to a server list.
type KetamaMode int

const (
	// Ketama is libmemcached's MEMCACHED_BEHAVIOR_KETAMA: 100 points a
	// server, points and keys hashed with libhashkit's default
	// one-at-a-time hash.
	Ketama KetamaMode = iota
	// KetamaWeighted is libmemcached's MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED
	// with equal weights, libketama's own placement (php-memcached's
	// OPT_LIBKETAMA_COMPATIBLE): 160 points a server, four from each of 40
	// MD5 digests, and keys hashed with MD5.
	KetamaWeighted
)

// ketamaDefaultPort is memcached's default port, which libmemcached leaves
// out of a server's point names.
const ketamaDefaultPort = 11211

// KetamaRing is a ketama continuum over members, in the order given (a
// client's server list): immutable, safe for concurrent use. A Ring in
// ModeKetama places keys as a KetamaRing in mode Ketama over its members in
// Name order; KetamaRing also has libketama's weighted flavour, and takes
// the servers in any order, as a client's list may give them.
type KetamaRing struct {
	mode    KetamaMode
	members []Member
	points  []uint64 // see ketamaContinuum
}

// NewKetama returns the ketama continuum libmemcached builds for a server
// list of members, in that order, each named by its Host (its IP if it has
// none) and Port, as a client given host:port entries names them.
func NewKetama(members []Member, mode KetamaMode) *KetamaRing {
	return &KetamaRing{mode: mode, members: slices.Clone(members), points: ketamaContinuum(members, mode)}
}

// ketamaContinuum returns the points of members, in that order, as a
// ketama client places them: each point's value in the top 32 bits and its
// member's index in the low 32, sorted, so that of points of equal value
// the member listed first owns the keys (as libmemcached's sort leaves
// them, but for its sort being unstable).
func ketamaContinuum(members []Member, mode KetamaMode) []uint64 {
	points := make([]uint64, 0, len(members)*ketamaPoints)
	var name []byte
	for i, m := range members {
		base := ketamaBase(m)
		switch mode {
		case KetamaWeighted:
			for p := range 40 {
				name = strconv.AppendInt(append(name[:0], base...), int64(p), 10)
				d := md5.Sum(name)
				for x := range 4 {
					points = append(points, uint64(binary.LittleEndian.Uint32(d[4*x:]))<<32|uint64(i))
				}
			}
		default:
			for p := range ketamaPoints {
				name = strconv.AppendInt(append(name[:0], base...), int64(p), 10)
				points = append(points, uint64(oneAtATime(name))<<32|uint64(i))
			}
		}
	}
	slices.Sort(points)
	return points
}

// ketamaSearch returns the index of the member owning the first point of
// points (a ketamaContinuum) at or clockwise of hash h, as libmemcached's
// dispatch_host does. points must not be empty.
func ketamaSearch(points []uint64, h uint32) int {
	t := uint64(h) << 32
	lo, hi := 0, len(points)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if points[mid] < t {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(points) {
		lo = 0
	}
	return int(uint32(points[lo]))
}

// OwnerIndex returns the index in the server list of the member that owns
// key, or -1 if there is none.
func (k *KetamaRing) OwnerIndex(key []byte) int {
	if len(k.points) == 0 {
		return -1
	}
	if len(k.members) == 1 {
		return 0 // libmemcached does not hash with one server
	}
	if k.mode == KetamaWeighted {
		d := md5.Sum(key)
		return ketamaSearch(k.points, binary.LittleEndian.Uint32(d[:4]))
	}
	return ketamaSearch(k.points, oneAtATime(key))
}

// Owner returns the member that owns key, or the zero Member if there is
// none.
func (k *KetamaRing) Owner(key []byte) Member {
	if i := k.OwnerIndex(key); i >= 0 {
		return k.members[i]
	}
	return Member{}
}

// oneAtATime is libhashkit's default hash, Bob Jenkins's one-at-a-time,
// over C chars: bytes above 127 are sign-extended, as libhashkit does on
// the platforms Debian builds it for.
func oneAtATime[T string | []byte](b T) uint32 {
	var v uint32
	for i := 0; i < len(b); i++ {
		v += uint32(int32(int8(b[i])))
		v += v << 10
		v ^= v >> 6
	}
	v += v << 3
	v ^= v >> 11
	v += v << 15
	return v
}
