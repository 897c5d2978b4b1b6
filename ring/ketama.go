package ring

import (
	"cmp"
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
	points  []ketamaPoint // sorted by value, then index
}

type ketamaPoint struct {
	value uint32
	index int
}

// NewKetama returns the ketama continuum libmemcached builds for a server
// list of members, in that order, each named by its Host (its IP if it has
// none) and Port, as a client given host:port entries names them.
func NewKetama(members []Member, mode KetamaMode) *KetamaRing {
	k := &KetamaRing{mode: mode, members: slices.Clone(members)}
	var name []byte
	for i, m := range members {
		base := ketamaBase(m)
		switch mode {
		case KetamaWeighted:
			for p := range 40 {
				name = strconv.AppendInt(append(name[:0], base...), int64(p), 10)
				d := md5.Sum(name)
				for x := range 4 {
					k.points = append(k.points, ketamaPoint{binary.LittleEndian.Uint32(d[4*x:]), i})
				}
			}
		default:
			for p := range ketamaPoints {
				name = strconv.AppendInt(append(name[:0], base...), int64(p), 10)
				k.points = append(k.points, ketamaPoint{oneAtATime(name), i})
			}
		}
	}
	slices.SortFunc(k.points, func(a, b ketamaPoint) int {
		return cmp.Or(cmp.Compare(a.value, b.value), cmp.Compare(a.index, b.index))
	})
	return k
}

// OwnerIndex returns the index in the server list of the member that owns
// key, or -1 if there is none.
func (k *KetamaRing) OwnerIndex(key []byte) int {
	if len(k.points) == 0 {
		return -1
	}
	if len(k.members) == 1 {
		return 0
	}
	var h uint32
	if k.mode == KetamaWeighted {
		d := md5.Sum(key)
		h = binary.LittleEndian.Uint32(d[:4])
	} else {
		h = oneAtATime(key)
	}
	i, _ := slices.BinarySearchFunc(k.points, h, func(p ketamaPoint, h uint32) int { return cmp.Compare(p.value, h) })
	if i == len(k.points) {
		i = 0
	}
	return k.points[i].index
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
