package monitor

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"hull/internal/errdefs"
)

func TestFrameRoundTrip(t *testing.T) {
	var b bytes.Buffer
	for _, f := range []struct {
		s byte
		p string
	}{{streamStdout, "out"}, {streamStderr, ""}, {streamStderr, strings.Repeat("x", 70000)}} {
		if err := writeFrame(&b, f.s, []byte(f.p)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"out", "", strings.Repeat("x", 70000)}
	buf := make([]byte, 16)
	for i, w := range want {
		_, p, err := readFrame(&b, buf)
		if err != nil || string(p) != w {
			t.Fatalf("frame %d: %d bytes, %v", i, len(p), err)
		}
	}
	if _, _, err := readFrame(&b, buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}

func TestWireErrorClass(t *testing.T) {
	r := errResponse(errdefsWrap())
	if err := r.err(); !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "no terminal") {
		t.Fatalf("error over the wire: %v", err)
	}
}

func errdefsWrap() error {
	// As the server builds them: text naming the object, wrapped class.
	return errors.Join(errors.New("container x has no terminal"), errdefs.ErrFailedPrecondition)
}

// FuzzProtocol feeds arbitrary bytes to the request and frame decoders: they
// must fail cleanly, never panic or allocate beyond maxFrame.
func FuzzProtocol(f *testing.F) {
	f.Add([]byte(`{"op":"attach","stdin":true}` + "\n"))
	f.Add([]byte{1, 0, 0, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{2, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte("{\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req request
		_ = readMsg(bufio.NewReader(bytes.NewReader(data)), &req)
		r := bytes.NewReader(data)
		for {
			_, p, err := readFrame(r, nil)
			if err != nil {
				break
			}
			if len(p) > maxFrame {
				t.Fatalf("frame of %d bytes", len(p))
			}
		}
	})
}
