// Package store keeps hulld's pod sandbox and container records: an in-memory
// index for fast lookups, written through to a bbolt database so that a
// restarted hulld finds every object it created.
package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"hull/internal/errdefs"
)

var (
	bucketSandboxes  = []byte("sandboxes")
	bucketContainers = []byte("containers")
)

// Store is the record index. It is safe for concurrent use: one RWMutex
// guards both maps, and every change is committed to bbolt before it becomes
// visible in memory. Records handed out are copies; change them only through
// the Update methods. Slices and maps inside a record (labels, IPs...) are
// shared between copies and must be replaced, never modified in place.
type Store struct {
	db *bolt.DB

	mu         sync.RWMutex
	sandboxes  map[string]*Sandbox
	containers map[string]*Container
}

// Open opens (or creates) the database at path and loads every record.
func Open(path string) (*Store, error) {
	// NoSync: the records describe processes and mounts that do not survive a
	// reboot anyway, and the page cache survives a crash of hulld itself;
	// skipping fsync keeps every CRI call free of disk flush latency.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: true, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("open metadata db %s: %w", path, err)
	}
	s := &Store{db: db, sandboxes: map[string]*Sandbox{}, containers: map[string]*Container{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSandboxes, bucketContainers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketSandboxes).ForEach(func(k, v []byte) error {
			var sb Sandbox
			if err := json.Unmarshal(v, &sb); err != nil {
				return fmt.Errorf("sandbox record %s: %w", k, err)
			}
			s.sandboxes[sb.ID] = &sb
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketContainers).ForEach(func(k, v []byte) error {
			var c Container
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("container record %s: %w", k, err)
			}
			s.containers[c.ID] = &c
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("load metadata db %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) put(bucket []byte, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode record %s: %w", id, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(id), data)
	})
}

func (s *Store) del(bucket []byte, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete([]byte(id))
	})
}

// resolve finds the full id for id or a unique prefix of one.
func resolve[T any](m map[string]*T, kind, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("%s id is empty: %w", kind, errdefs.ErrInvalidArgument)
	}
	if _, ok := m[id]; ok {
		return id, nil
	}
	var found []string
	for k := range m {
		if strings.HasPrefix(k, id) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s %q: %w", kind, id, errdefs.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s id prefix %q matches %d objects: %w", kind, id, len(found), errdefs.ErrInvalidArgument)
}

// AddSandbox records a new sandbox; its id and name must be unused.
func (s *Store) AddSandbox(sb *Sandbox) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sandboxes[sb.ID]; ok {
		return fmt.Errorf("sandbox %s: %w", sb.ID, errdefs.ErrAlreadyExists)
	}
	for _, o := range s.sandboxes {
		if o.Key() == sb.Key() {
			return fmt.Errorf("sandbox name %q is used by %s: %w", sb.Key(), o.ID, errdefs.ErrAlreadyExists)
		}
	}
	cp := *sb
	if err := s.put(bucketSandboxes, sb.ID, &cp); err != nil {
		return err
	}
	s.sandboxes[sb.ID] = &cp
	return nil
}

// Sandbox returns a copy of the sandbox with this id or unique id prefix.
func (s *Store) Sandbox(id string) (*Sandbox, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	full, err := resolve(s.sandboxes, "sandbox", id)
	if err != nil {
		return nil, err
	}
	cp := *s.sandboxes[full]
	return &cp, nil
}

// Sandboxes returns copies of every sandbox, oldest first.
func (s *Store) Sandboxes() []*Sandbox {
	s.mu.RLock()
	out := make([]*Sandbox, 0, len(s.sandboxes))
	for _, sb := range s.sandboxes {
		cp := *sb
		out = append(out, &cp)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out
}

// UpdateSandbox applies fn to a copy of the record and stores the result.
// The record is unchanged when fn fails.
func (s *Store) UpdateSandbox(id string, fn func(*Sandbox) error) (*Sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	full, err := resolve(s.sandboxes, "sandbox", id)
	if err != nil {
		return nil, err
	}
	cp := *s.sandboxes[full]
	if err := fn(&cp); err != nil {
		return nil, err
	}
	if err := s.put(bucketSandboxes, full, &cp); err != nil {
		return nil, err
	}
	s.sandboxes[full] = &cp
	out := cp
	return &out, nil
}

// DeleteSandbox forgets a sandbox; deleting a missing one is not an error.
func (s *Store) DeleteSandbox(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sandboxes[id]; !ok {
		return nil
	}
	if err := s.del(bucketSandboxes, id); err != nil {
		return err
	}
	delete(s.sandboxes, id)
	return nil
}

// AddContainer records a new container; its id and its name within the
// sandbox must be unused.
func (s *Store) AddContainer(c *Container) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.containers[c.ID]; ok {
		return fmt.Errorf("container %s: %w", c.ID, errdefs.ErrAlreadyExists)
	}
	for _, o := range s.containers {
		if o.Key() == c.Key() {
			return fmt.Errorf("container name %q is used by %s: %w", c.Key(), o.ID, errdefs.ErrAlreadyExists)
		}
	}
	cp := *c
	if err := s.put(bucketContainers, c.ID, &cp); err != nil {
		return err
	}
	s.containers[c.ID] = &cp
	return nil
}

// Container returns a copy of the container with this id or unique id prefix.
func (s *Store) Container(id string) (*Container, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	full, err := resolve(s.containers, "container", id)
	if err != nil {
		return nil, err
	}
	cp := *s.containers[full]
	return &cp, nil
}

// Containers returns copies of every container, oldest first.
func (s *Store) Containers() []*Container {
	s.mu.RLock()
	out := make([]*Container, 0, len(s.containers))
	for _, c := range s.containers {
		cp := *c
		out = append(out, &cp)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out
}

// UpdateContainer applies fn to a copy of the record and stores the result.
// The record is unchanged when fn fails.
func (s *Store) UpdateContainer(id string, fn func(*Container) error) (*Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	full, err := resolve(s.containers, "container", id)
	if err != nil {
		return nil, err
	}
	cp := *s.containers[full]
	if err := fn(&cp); err != nil {
		return nil, err
	}
	if err := s.put(bucketContainers, full, &cp); err != nil {
		return nil, err
	}
	s.containers[full] = &cp
	out := cp
	return &out, nil
}

// DeleteContainer forgets a container; deleting a missing one is not an error.
func (s *Store) DeleteContainer(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.containers[id]; !ok {
		return nil
	}
	if err := s.del(bucketContainers, id); err != nil {
		return err
	}
	delete(s.containers, id)
	return nil
}
