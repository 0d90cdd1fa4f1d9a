package cri

import (
	"crypto/rand"
	"encoding/hex"

	"google.golang.org/protobuf/proto"
)

// newID returns a 64-hex-digit id, like containerd's and CRI-O's.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails on Linux (getrandom)
	return hex.EncodeToString(b)
}

// marshal encodes a CRI config for the store; CRI messages always encode.
func marshal(m proto.Message) []byte {
	b, _ := proto.Marshal(m)
	return b
}

func unmarshal(b []byte, m proto.Message) error { return proto.Unmarshal(b, m) }
