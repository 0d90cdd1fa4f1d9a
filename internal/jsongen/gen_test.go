package jsongen

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	N int `json:"n"`
}

//lint:ignore U1000 the unexported field is there to be skipped by the generator
type outer struct {
	inner
	Name    string            `json:"name,omitempty"`
	Skip    string            `json:"-"`
	Ptr     *inner            `json:"ptr"`
	List    []inner           `json:"list"`
	Map     map[string]uint16 `json:"map"`
	Any     any               `json:"any"`
	When    time.Time         `json:"when"`
	Raw     json.RawMessage   `json:"raw"`
	Bytes   []byte            `json:"bytes"`
	private int
}

// The generated source names every field's key and type, skips what
// encoding/json skips, and flattens an embedded struct.
func TestGenerateCoversFields(t *testing.T) {
	src, err := Generate("TestGenerateCoversFields", "p", "example.com/p", "bootstrap", []Root{{Name: "Outer", Type: reflect.TypeOf(outer{})}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for _, want := range []string{
		"//go:build !bootstrap", "func jsonDecodeOuter(in *jlexer.Lexer, out *jsongen.outer)",
		`case "n":`, `case "name":`, `case "ptr":`, `case "map":`, `"when":`,
		"jsonrt.Unmarshaler(in, &out.When)", "w.Marshaler(v.When)", "jsonrt.Bytes(in, &out.Bytes)",
		"jsonrt.Any(in, &out.Any)", `if v.Name != "" {`, "jsonEncodeMapStringUint16(w, v.Map)", "jsonrt.SortedKeys(v)",
		"func jsonDecodeSliceJsongenInner(in *jlexer.Lexer, out *[]jsongen.inner)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("generated code lacks %q", want)
		}
	}
	for _, absent := range []string{`"Skip"`, `"-"`, "private"} {
		if strings.Contains(s, absent) {
			t.Errorf("generated code has %s, which encoding/json ignores", absent)
		}
	}
}

// What the generator cannot do faithfully is an error, not silently
// wrong code.
func TestGenerateRefusesUnsupported(t *testing.T) {
	type withChan struct{ C chan int }
	type withIntKeys struct{ M map[int]string }
	type withAnon struct{ A struct{ X int } }
	type withStringOpt struct {
		N int `json:"n,string"`
	}
	for _, v := range []any{withChan{}, withIntKeys{}, withAnon{}, withStringOpt{}, 3} {
		if _, err := Generate("t", "p", "example.com/p", "b", []Root{{Name: "X", Type: reflect.TypeOf(v)}}); err == nil {
			t.Errorf("%T: generated without an error", v)
		}
	}
}
