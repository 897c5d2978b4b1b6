package ring_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/memcluster/memcluster/ring"
)

// A gomemcache client that spreads keys over a memcluster cluster and
// follows it as nodes join and leave.
func ExampleSelector() {
	sel, err := ring.NewSelector([]string{"10.0.0.1:11211", "10.0.0.2:11211"}, ring.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer sel.Close()
	// Wait for the first config rather than start with an empty ring.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sel.Refresh(ctx); err != nil {
		log.Fatal(err)
	}

	mc := memcache.NewFromSelector(sel)
	if err := mc.Set(&memcache.Item{Key: "greeting", Value: []byte("hello")}); err != nil {
		log.Fatal(err)
	}
	_, r := sel.Current()
	fmt.Println("greeting lives on", r.OwnerString("greeting").Addr())
}

// A client that sends a dead node's keys to their owners without it at the
// first failure, rather than failing them until the cluster drops the node.
func ExampleClient() {
	sel, err := ring.NewSelector([]string{"10.0.0.1:11211", "10.0.0.2:11211"}, ring.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer sel.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sel.Refresh(ctx); err != nil {
		log.Fatal(err)
	}

	mc := ring.NewClient(sel)
	mc.Memcache().Timeout = 200 * time.Millisecond
	it, err := mc.Get(ctx, "greeting")
	if errors.Is(err, memcache.ErrCacheMiss) {
		err = mc.Set(ctx, &memcache.Item{Key: "greeting", Value: []byte("hello")})
	}
	if err != nil {
		log.Fatal(err)
	}
	_ = it
}

func ExampleNew() {
	r, err := ring.New([]ring.Member{
		{Host: "cache-a", IP: "10.0.0.1", Port: 11211},
		{Host: "cache-b", IP: "10.0.0.2", Port: 11211},
		{Host: "cache-c", IP: "10.0.0.3", Port: 11211},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.OwnerString("user:42").Host)
	// Output: cache-b
}

func ExampleFormatClusterConfig() {
	fmt.Printf("%q\n", ring.FormatClusterConfig(3, []ring.Member{
		{Host: "cache-a", IP: "10.0.0.1", Port: 11211},
		{Host: "cache-b", IP: "10.0.0.2", Port: 11211},
	}))
	// Output: "CONFIG cluster 0 48\r\n3\ncache-a|10.0.0.1|11211 cache-b|10.0.0.2|11211\n\r\nEND\r\n"
}
