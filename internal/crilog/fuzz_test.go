package crilog

import (
	"bytes"
	"regexp"
	"testing"
	"time"
)

var fuzzRecord = regexp.MustCompile(`^\S+ stdout ([PF]) ([^\n]*)$`)

// FuzzSplit checks the splitter's invariants on any input cut at any read
// boundaries, with a small maximum so that splitting is exercised: the
// records reassemble to the input, no message exceeds the maximum, and no
// record is an empty P.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("hello\nworld"), uint8(3))
	f.Add([]byte("12345678\n123456789\n\n\n"), uint8(1))
	f.Add([]byte("\n"), uint8(0))
	f.Add([]byte("a\r\nb\x00c\n"), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		const max = 8
		sp := splitter{stream: Stdout, max: max}
		var out []byte
		step := int(cut)%13 + 1
		ts := time.Unix(0, 0)
		for rest := in; len(rest) > 0; {
			n := min(step, len(rest))
			out = sp.feed(out, ts, rest[:n])
			rest = rest[n:]
		}
		if len(sp.line) > 0 {
			out = sp.emit(out, ts, Partial)
		}
		var got []byte
		for _, line := range bytes.SplitAfter(out, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			m := fuzzRecord.FindSubmatch(bytes.TrimSuffix(line, []byte("\n")))
			if m == nil {
				t.Fatalf("malformed record %q", line)
			}
			tag, msg := string(m[1]), m[2]
			if len(msg) > max {
				t.Fatalf("record %q longer than %d", line, max)
			}
			if tag == Partial && len(msg) == 0 {
				t.Fatalf("empty P record in %q", out)
			}
			got = append(got, msg...)
			if tag == Full {
				got = append(got, '\n')
			}
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("reassembled %q, want %q", got, in)
		}
	})
}
