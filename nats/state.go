package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultStateBucket is the JetStream object store bucket of the engine's saved state.
const DefaultStateBucket = "CB_ENGINE"

// seqMeta is the object metadata key holding the log sequence a saved state reflects.
const seqMeta = "seq"

// StateStore keeps the engine's saved state (engine.MarshalState) in a JetStream object
// store (file storage; an object is chunked, so a state of many megabytes is fine), one
// object per name, with the event-log sequence of the last event the state reflects. At
// start the node restores the newest state and replays the log after that sequence.
type StateStore struct {
	obs  jetstream.ObjectStore
	name string
}

// OpenStateStore creates or opens the bucket (DefaultStateBucket when bucket is "") on nc's
// JetStream, for the object name (one per site). Errors come from JetStream.
func OpenStateStore(ctx context.Context, nc *natsgo.Conn, bucket, name string, replicas int) (*StateStore, error) {
	if bucket == "" {
		bucket = DefaultStateBucket
	}
	if name == "" {
		return nil, errors.New("nats: state store: name is required")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("nats: state store: %w", err)
	}
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      bucket,
		Description: "callbridge engine state",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("nats: state store %s: %w", bucket, err)
	}
	return &StateStore{obs: obs, name: name}, nil
}

// Save replaces the saved state with state, which reflects every event up to seq.
func (s *StateStore) Save(ctx context.Context, seq uint64, state []byte) error {
	_, err := s.obs.Put(ctx, jetstream.ObjectMeta{
		Name:     s.name,
		Metadata: map[string]string{seqMeta: strconv.FormatUint(seq, 10)},
	}, bytes.NewReader(state))
	if err != nil {
		return fmt.Errorf("nats: save state: %w", err)
	}
	return nil
}

// Load returns the saved state and its sequence; found is false when none was saved.
func (s *StateStore) Load(ctx context.Context) (seq uint64, state []byte, found bool, err error) {
	info, err := s.obs.GetInfo(ctx, s.name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("nats: load state: %w", err)
	}
	seq, err = strconv.ParseUint(info.Metadata[seqMeta], 10, 64)
	if err != nil {
		return 0, nil, false, fmt.Errorf("nats: load state: bad %s metadata %q", seqMeta, info.Metadata[seqMeta])
	}
	state, err = s.obs.GetBytes(ctx, s.name)
	if err != nil {
		return 0, nil, false, fmt.Errorf("nats: load state: %w", err)
	}
	return seq, state, true, nil
}
