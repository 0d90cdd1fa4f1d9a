// Package crilog writes container output in the CRI log format the kubelet
// reads:
//
//	2016-10-06T00:17:09.669794202Z stdout F text of a full line
//	2016-10-06T00:17:09.669794202Z stderr P first 16 KiB of a longer line
//
// Each output line is a whole record written with one write(2) on an
// O_APPEND file, so two streams (stdout and stderr) may share one Writer.
//
// Lines longer than MaxLineSize are split into P (partial) records of exactly
// MaxLineSize bytes followed by an F record with the rest; a line of exactly
// MaxLineSize bytes is one F record, so no empty F record is ever written.
// A last line that ends without a newline before EOF is written as a P
// record: that is what containerd (pkg/cri/io logger: a line cut by EOF is
// "treated as a partial line") and CRI-O's conmon do, and it lets the kubelet
// reproduce the output byte for byte (no newline is invented). Only '\n'
// ends a line; a '\r' before it stays part of the message, as in conmon
// (containerd's bufio.ReadLine drops it), so a terminal's "\r\n" survives.
//
// The package is stdlib only: the monitor links it and must stay small.
package crilog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// MaxLineSize is the longest message written in one record.
const MaxLineSize = 16 * 1024

// Streams and tags.
const (
	Stdout  = "stdout"
	Stderr  = "stderr"
	Full    = "F"
	Partial = "P"
)

// timeFormat is RFC 3339 with fixed-width nanoseconds, so records sort as text.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("crilog: writer closed")

// Writer appends CRI log records to one file. Open creates it; any number of
// goroutines may call Copy concurrently (one per stream); Reopen swaps the
// file after the kubelet renamed it for rotation; Close closes the file, after
// which Copy keeps draining its reader but drops the records. All methods are
// safe for concurrent use; mu serialises the file swap and each record write.
type Writer struct {
	path string
	mu   sync.Mutex
	f    *os.File // nil after Close
}

// Open opens (creating parent directories and the file as needed) path for
// appending.
func Open(path string) (*Writer, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return &Writer{path: path, f: f}, nil
}

func openFile(path string) (*os.File, error) {
	if path == "" {
		return nil, errors.New("crilog: empty log path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("crilog: create log directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("crilog: open %s: %w", path, err)
	}
	return f, nil
}

// Path returns the file path the Writer (re)opens.
func (w *Writer) Path() string { return w.path }

// Reopen opens the path again and switches to the new file; records already
// written stay in the old (renamed) file. On error the old file stays in use.
func (w *Writer) Reopen() error {
	f, err := openFile(w.path)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		f.Close()
		return ErrClosed
	}
	old := w.f
	w.f = f
	return old.Close()
}

// Close closes the file. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// WriteRecord writes one record; msg must not contain '\n'.
func (w *Writer) WriteRecord(stream, tag string, msg []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return ErrClosed
	}
	rec := appendRecord(nil, time.Now(), stream, tag, msg)
	_, err := w.f.Write(rec)
	return err
}

func appendRecord(buf []byte, ts time.Time, stream, tag string, msg []byte) []byte {
	buf = ts.UTC().AppendFormat(buf, timeFormat)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ')
	buf = append(buf, tag...)
	buf = append(buf, ' ')
	buf = append(buf, msg...)
	return append(buf, '\n')
}

// splitter turns a byte stream into records. It keeps the bytes of the
// current, unfinished line between reads.
type splitter struct {
	stream string
	max    int    // longest message of one record (MaxLineSize)
	line   []byte // message bytes of the current line, at most max
}

// feed appends to out the records completed by data, all stamped ts.
func (s *splitter) feed(out []byte, ts time.Time, data []byte) []byte {
	for len(data) > 0 {
		// A full buffer with more bytes of the same line coming is a
		// partial record.
		if len(s.line) == s.max && data[0] != '\n' {
			out = s.emit(out, ts, Partial)
		}
		room := s.max - len(s.line)
		seg := data
		if len(seg) > room {
			seg = seg[:room]
		}
		if i := bytes.IndexByte(seg, '\n'); i >= 0 {
			s.line = append(s.line, seg[:i]...)
			out = s.emit(out, ts, Full)
			data = data[i+1:]
			continue
		}
		if len(data) > room && data[room] == '\n' {
			// Exactly max bytes and then the newline: one F record.
			s.line = append(s.line, seg...)
			out = s.emit(out, ts, Full)
			data = data[room+1:]
			continue
		}
		s.line = append(s.line, seg...)
		data = data[len(seg):]
	}
	return out
}

func (s *splitter) emit(out []byte, ts time.Time, tag string) []byte {
	out = appendRecord(out, ts, s.stream, tag, s.line)
	s.line = s.line[:0]
	return out
}

// Copy reads r until EOF and writes its lines as records of stream (Stdout
// or Stderr). The records completed by one read are written with one
// write(2), under the lock, stamped with the time of that read, so the file
// holds whole records in timestamp order even with two streams. Copy always
// drains r, even when writes fail (a blocked pipe would stall the
// container), and returns the read error (nil at EOF) joined with the first
// write error.
func (w *Writer) Copy(stream string, r io.Reader) error {
	var (
		sp      = splitter{stream: stream, max: MaxLineSize, line: make([]byte, 0, MaxLineSize)}
		chunk   = make([]byte, 32*1024)
		out     []byte
		werr    error
		readErr error
	)
	flush := func(final bool) {
		w.mu.Lock()
		defer w.mu.Unlock()
		out = out[:0]
		ts := time.Now()
		out = sp.feed(out, ts, chunk)
		if final && len(sp.line) > 0 {
			out = sp.emit(out, ts, Partial)
		}
		if len(out) == 0 || w.f == nil {
			return
		}
		if _, err := w.f.Write(out); err != nil && werr == nil {
			werr = fmt.Errorf("crilog: write %s: %w", w.path, err)
		}
	}
	buf := chunk
	for {
		n, err := r.Read(buf)
		chunk = buf[:n]
		flush(err != nil)
		if err != nil {
			if err != io.EOF {
				readErr = fmt.Errorf("crilog: read %s: %w", stream, err)
			}
			break
		}
	}
	return errors.Join(readErr, werr)
}
