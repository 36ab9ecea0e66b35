package hub

import (
	"hash/maphash"
	"sync"

	"github.com/callbridge/callbridge"
)

// View is the published, read-only copy of every agent's state and calls that desktops
// draw themselves from (DESIGN.md §3: snapshots come from a published copy of engine
// state, not a round trip through the engine's loop). The node puts an agent's snapshot
// once the events that changed it are stored and published to the Hub, with the sequence
// of the last of them, so that a desktop that draws the snapshot and subscribes after its
// Seq misses nothing and sees nothing twice.
type View struct {
	seed   maphash.Seed
	shards [nShards]viewShard
}

type viewShard struct {
	mu sync.RWMutex
	m  map[Key]callbridge.AgentSnapshot
}

// NewView returns an empty View.
func NewView() *View {
	v := &View{seed: maphash.MakeSeed()}
	for i := range v.shards {
		v.shards[i].m = map[Key]callbridge.AgentSnapshot{}
	}
	return v
}

func (v *View) shard(k Key) *viewShard { return &v.shards[shardOf(v.seed, k)] }

// Put publishes snap as its agent's current snapshot (keyed by snap.Agent.Tenant and
// snap.Agent.ID). snap and what it refers to must not be modified afterwards.
func (v *View) Put(snap callbridge.AgentSnapshot) {
	k := Key{Tenant: snap.Agent.Tenant, Agent: snap.Agent.ID}
	s := v.shard(k)
	s.mu.Lock()
	s.m[k] = snap
	s.mu.Unlock()
}

// Get returns the agent's snapshot. The caller must not modify it.
func (v *View) Get(k Key) (callbridge.AgentSnapshot, bool) {
	s := v.shard(k)
	s.mu.RLock()
	snap, ok := s.m[k]
	s.mu.RUnlock()
	return snap, ok
}

// Delete forgets the agent (no longer in the directory).
func (v *View) Delete(k Key) {
	s := v.shard(k)
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

// Keys returns every agent the view holds.
func (v *View) Keys() []Key {
	var out []Key
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.RLock()
		for k := range s.m {
			out = append(out, k)
		}
		s.mu.RUnlock()
	}
	return out
}
