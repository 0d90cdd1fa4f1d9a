// Package jsonrt is what the code internal/jsongen generates calls: object
// decoding with encoding/json's key matching on easyjson's lexer, and a
// small JSON writer.
package jsonrt

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mailru/easyjson/jlexer"
)

// FoldKey returns the name in names equal to key under case folding
// (encoding/json's fallback match), or "".
func FoldKey(key string, names []string) string {
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return n
		}
	}
	return ""
}

// Object decodes an object, giving each member to field (which
// reports whether it knew the key); unknown members are skipped.
func Object(in *jlexer.Lexer, names []string, field func(key string) bool) {
	in.Delim('{')
	for in.Ok() && !in.IsDelim('}') {
		key := in.UnsafeFieldName(false)
		in.WantColon()
		if !field(key) {
			if k := FoldKey(key, names); k == "" || !field(k) {
				in.SkipRecursive()
			}
		}
		in.WantComma()
	}
	in.Delim('}')
}

// Out collects an encoded document, and the first error of a
// json.Marshaler or interface value on the way.
type Out struct {
	b   []byte
	err error
}

// NewOut returns an Out with room for n bytes.
func NewOut(n int) *Out { return &Out{b: make([]byte, 0, n)} }

// Result is the document and the first error on the way.
func (w *Out) Result() ([]byte, error) { return w.b, w.err }

// Byte writes one literal byte (a delimiter).
func (w *Out) Byte(c byte) { w.b = append(w.b, c) }

// Key starts an object member: k is the quoted key with its colon.
func (w *Out) Key(first *bool, k string) {
	if !*first {
		w.b = append(w.b, ',')
	}
	*first = false
	w.b = append(w.b, k...)
}

func (w *Out) Null()          { w.b = append(w.b, "null"...) }
func (w *Out) Bool(v bool)    { w.b = strconv.AppendBool(w.b, v) }
func (w *Out) Int(v int64)    { w.b = strconv.AppendInt(w.b, v, 10) }
func (w *Out) Uint(v uint64)  { w.b = strconv.AppendUint(w.b, v, 10) }
func (w *Out) Bytes(v []byte) { w.Str(base64.StdEncoding.EncodeToString(v)) }

func (w *Out) Marshaler(m json.Marshaler) {
	b, err := m.MarshalJSON()
	w.raw(b, err)
}

func (w *Out) Any(v any) {
	b, err := json.Marshal(v)
	w.raw(b, err)
}

func (w *Out) raw(b []byte, err error) {
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		w.Null()
		return
	}
	w.b = append(w.b, b...)
}

// Str writes s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped
// (as encoding/json does, for JavaScript).
func (w *Out) Str(s string) {
	const hex = "0123456789abcdef"
	w.b = append(w.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			w.b = append(w.b, s[start:i]...)
			switch c {
			case '"', '\\':
				w.b = append(w.b, '\\', c)
			case '\n':
				w.b = append(w.b, '\\', 'n')
			case '\r':
				w.b = append(w.b, '\\', 'r')
			case '\t':
				w.b = append(w.b, '\\', 't')
			default:
				w.b = append(w.b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			w.b = append(w.b, s[start:i]...)
			if r == utf8.RuneError {
				w.b = append(w.b, "\\ufffd"...)
			} else {
				w.b = append(w.b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	w.b = append(w.b, s[start:]...)
	w.b = append(w.b, '"')
}

// SortedKeys returns the keys of m in order (encoding/json sorts map keys).
func SortedKeys[K ~string, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }
