package crilog

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type record struct {
	ts           time.Time
	stream, tag  string
	msg          string
	rawTimestamp string
}

var recordRE = regexp.MustCompile(`^(\S+) (stdout|stderr) ([PF]) (.*)$`)

// readRecords parses a CRI log file strictly: every line must be a record.
func readRecords(t *testing.T, path string) []record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("log file does not end with a newline: %q", tail(data))
	}
	var out []record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		m := recordRE.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("malformed record %q", sc.Text())
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatalf("timestamp %q: %v", m[1], err)
		}
		if len(m[1]) != len("2006-01-02T15:04:05.000000000Z") {
			t.Fatalf("timestamp %q is not fixed-width UTC nanoseconds", m[1])
		}
		out = append(out, record{ts: ts, stream: m[2], tag: m[3], msg: m[4], rawTimestamp: m[1]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func tail(b []byte) []byte {
	if len(b) > 40 {
		return b[len(b)-40:]
	}
	return b
}

func openTemp(t *testing.T) (*Writer, string) {
	t.Helper()
	// A nested path: Open must create the pod's log directory.
	p := filepath.Join(t.TempDir(), "pods", "ns_pod_uid", "ctr", "0.log")
	w, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, p
}

func TestExactFormat(t *testing.T) {
	w, p := openTemp(t)
	before := time.Now()
	if err := w.Copy(Stdout, strings.NewReader("hello world\n\nwith\rcr\nlast")); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	recs := readRecords(t, p)
	want := []struct{ tag, msg string }{{"F", "hello world"}, {"F", ""}, {"F", "with\rcr"}, {"P", "last"}}
	if len(recs) != len(want) {
		t.Fatalf("got %d records %+v, want %d", len(recs), recs, len(want))
	}
	for i, r := range recs {
		if r.stream != "stdout" || r.tag != want[i].tag || r.msg != want[i].msg {
			t.Errorf("record %d = %s %s %q, want stdout %s %q", i, r.stream, r.tag, r.msg, want[i].tag, want[i].msg)
		}
		if r.ts.Before(before.Add(-time.Second)) || r.ts.After(after.Add(time.Second)) {
			t.Errorf("record %d timestamp %v outside [%v, %v]", i, r.ts, before, after)
		}
	}
	// The empty line must be "<ts> stdout F \n" exactly: one space after the tag.
	data, _ := os.ReadFile(p)
	lines := strings.Split(string(data), "\n")
	if want := recs[1].rawTimestamp + " stdout F "; lines[1] != want {
		t.Errorf("empty line record = %q, want %q", lines[1], want)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("log file mode = %v, %v; want 0640", fi.Mode(), err)
	}
}

func TestLongLinesSplit(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  []string // tag:len
	}{
		{"exactly max", strings.Repeat("a", MaxLineSize) + "\n", []string{"F:16384"}},
		{"max plus one", strings.Repeat("b", MaxLineSize+1) + "\n", []string{"P:16384", "F:1"}},
		{"two max", strings.Repeat("c", 2*MaxLineSize) + "\n", []string{"P:16384", "F:16384"}},
		{"long then short", strings.Repeat("d", 40000) + "\nxy\n", []string{"P:16384", "P:16384", "F:7232", "F:2"}},
		{"long unterminated", strings.Repeat("e", MaxLineSize+5), []string{"P:16384", "P:5"}},
		{"max unterminated", strings.Repeat("f", MaxLineSize), []string{"P:16384"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Feed through a pipe in odd-sized writes so line ends fall on
			// read boundaries.
			for _, chunk := range []int{1, 7, 4096, MaxLineSize, 1 << 20} {
				w, p := openTemp(t)
				pr, pw := io.Pipe()
				go func() {
					in := tc.input
					for len(in) > 0 {
						n := min(chunk, len(in))
						pw.Write([]byte(in[:n]))
						in = in[n:]
					}
					pw.Close()
				}()
				if err := w.Copy(Stderr, pr); err != nil {
					t.Fatal(err)
				}
				recs := readRecords(t, p)
				var got []string
				var joined strings.Builder
				for _, r := range recs {
					got = append(got, fmt.Sprintf("%s:%d", r.tag, len(r.msg)))
					if r.stream != "stderr" {
						t.Errorf("stream %q", r.stream)
					}
					joined.WriteString(r.msg)
					if r.tag == "F" {
						joined.WriteByte('\n')
					}
				}
				if strings.Join(got, " ") != strings.Join(tc.want, " ") {
					t.Errorf("chunk %d: records %v, want %v", chunk, got, tc.want)
				}
				if joined.String() != tc.input {
					t.Errorf("chunk %d: reassembled output differs from input", chunk)
				}
			}
		})
	}
}

func TestTwoConcurrentStreams(t *testing.T) {
	w, p := openTemp(t)
	const n = 2000
	var wg sync.WaitGroup
	for _, s := range []string{Stdout, Stderr} {
		pr, pw := io.Pipe()
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range n {
				fmt.Fprintf(pw, "%s line %d %s\n", s, i, strings.Repeat("x", i%300))
			}
			pw.Close()
		}()
		go func() {
			defer wg.Done()
			if err := w.Copy(s, pr); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	recs := readRecords(t, p)
	next := map[string]int{}
	var last time.Time
	for _, r := range recs {
		want := fmt.Sprintf("%s line %d %s", r.stream, next[r.stream], strings.Repeat("x", next[r.stream]%300))
		if r.tag != "F" || r.msg != want {
			t.Fatalf("record %s %s %q, want F %q (interleaved or torn)", r.stream, r.tag, r.msg, want)
		}
		if r.ts.Before(last) {
			t.Fatalf("timestamps go backwards: %v after %v", r.ts, last)
		}
		last = r.ts
		next[r.stream]++
	}
	if next[Stdout] != n || next[Stderr] != n {
		t.Fatalf("got %d stdout and %d stderr records, want %d each", next[Stdout], next[Stderr], n)
	}
}

func TestReopenAfterRename(t *testing.T) {
	w, p := openTemp(t)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- w.Copy(Stdout, pr) }()

	// The kubelet rotates: rename the live file, then ask for a reopen.
	fmt.Fprintln(pw, "before rotation")
	// io.Pipe is synchronous, but the record is written after the read
	// returns; a second line guarantees the first was written.
	fmt.Fprintln(pw, "before rotation 2")
	rotated := p + ".20260101-000000"
	if err := os.Rename(p, rotated); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(pw, "after rotation")
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	old, cur := readRecords(t, rotated), readRecords(t, p)
	var oldMsgs, curMsgs []string
	for _, r := range old {
		oldMsgs = append(oldMsgs, r.msg)
	}
	for _, r := range cur {
		curMsgs = append(curMsgs, r.msg)
	}
	if len(curMsgs) == 0 || curMsgs[len(curMsgs)-1] != "after rotation" || oldMsgs[0] != "before rotation" {
		t.Fatalf("rotated file %q, new file %q", oldMsgs, curMsgs)
	}
	if len(oldMsgs)+len(curMsgs) != 3 {
		t.Fatalf("lost or duplicated records: rotated %q, new %q", oldMsgs, curMsgs)
	}
	for _, m := range oldMsgs {
		if m == "after rotation" {
			t.Fatalf("record written to the rotated file after Reopen")
		}
	}
	// Reopen also recreates a missing directory (kubelet removed the pod's
	// log dir): it must not fail.
	if err := os.RemoveAll(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatalf("Reopen after the directory vanished: %v", err)
	}
	if err := w.WriteRecord(Stdout, Full, []byte("recreated")); err != nil {
		t.Fatal(err)
	}
	if r := readRecords(t, p); len(r) != 1 || r[0].msg != "recreated" {
		t.Fatalf("records after recreate = %+v", r)
	}
}

func TestCloseDrains(t *testing.T) {
	w, p := openTemp(t)
	if err := w.WriteRecord(Stdout, Full, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// After Close, Copy still consumes its input (so the container never
	// blocks on a full pipe) and drops the records.
	r := strings.NewReader(strings.Repeat("late line\n", 1000))
	if err := w.Copy(Stdout, r); err != nil {
		t.Fatalf("Copy after Close = %v", err)
	}
	if r.Len() != 0 {
		t.Fatalf("Copy after Close left %d bytes unread", r.Len())
	}
	if err := w.WriteRecord(Stdout, Full, []byte("x")); err != ErrClosed {
		t.Fatalf("WriteRecord after Close = %v, want ErrClosed", err)
	}
	if err := w.Reopen(); err != ErrClosed {
		t.Fatalf("Reopen after Close = %v, want ErrClosed", err)
	}
	if recs := readRecords(t, p); len(recs) != 1 {
		t.Fatalf("records = %+v, want only the one before Close", recs)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(f, "x.log")); err == nil {
		t.Error("Open under a regular file succeeded")
	}
}

func TestCopyReadError(t *testing.T) {
	w, p := openTemp(t)
	r := io.MultiReader(strings.NewReader("partial"), errReader{})
	if err := w.Copy(Stdout, r); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Copy = %v, want the read error", err)
	}
	if recs := readRecords(t, p); len(recs) != 1 || recs[0].tag != "P" || recs[0].msg != "partial" {
		t.Fatalf("records = %+v, want the pending partial line flushed", recs)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, fmt.Errorf("boom") }

func BenchmarkCopy(b *testing.B) {
	w, err := Open(filepath.Join(b.TempDir(), "b.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	data := []byte(strings.Repeat(strings.Repeat("y", 99)+"\n", 1000))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := w.Copy(Stdout, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
