package oci

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/jsongen"
)

var updateJSON = flag.Bool("update-json", false, "rewrite ocijson_gen.go")

const jsonGenFile = "ocijson_gen.go"

// TestJSONDecodersGenerated fails when ocijson_gen.go is not what the
// generator makes of the current types (go generate ./internal/oci).
func TestJSONDecodersGenerated(t *testing.T) {
	var roots []jsongen.Root
	for _, r := range jsonRoots {
		roots = append(roots, jsongen.Root{Name: r.name, Type: reflect.TypeOf(r.v)})
	}
	src, err := jsongen.Generate("TestJSONDecodersGenerated (go generate ./internal/oci)", "oci", "hull/internal/oci", "jsongen_bootstrap", roots)
	if err != nil {
		t.Fatal(err)
	}
	if *updateJSON {
		if err := os.WriteFile(jsonGenFile, src, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(jsonGenFile)
	if err != nil || !bytes.Equal(old, src) {
		t.Fatalf("%s is stale: run go generate ./internal/oci", jsonGenFile)
	}
}

// fill sets every field reachable from v to a distinct non-zero value, so
// that a decoder that misses a field shows up as a difference.
func fill(v reflect.Value, n *int, depth int) {
	*n++
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.String:
		v.SetString("s" + strings.Repeat("x", *n%7))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n % 100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n%100) + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	case reflect.Pointer:
		if depth > 8 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), n, depth+1)
		v.Set(p)
	case reflect.Slice:
		if v.Type() == reflect.TypeOf(json.RawMessage{}) {
			v.SetBytes([]byte(`{"a":[1,"b"]}`))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			fill(s.Index(i), n, depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := 0; i < 2; i++ {
			k := reflect.New(v.Type().Key()).Elem()
			fill(k, n, depth+1)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, n, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"k": []any{"v", 1.5, true, nil}}))
	case reflect.Struct:
		if v.Type().PkgPath() == "time" {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n, depth+1)
			}
		}
	}
}

// codecCase is one root's generated decoder and encoder behind any.
type codecCase struct {
	name string
	v    any
	dec  func(b []byte) (any, error)
	enc  func(v any) ([]byte, error)
}

func codecCases() []codecCase {
	return []codecCase{
		{"Spec", specs.Spec{}, func(b []byte) (any, error) { return decodeSpec(b) },
			func(v any) ([]byte, error) { return encodeJSON(v.(*specs.Spec), jsonEncodeSpec) }},
		{"Process", specs.Process{}, func(b []byte) (any, error) { return DecodeProcess(b) },
			func(v any) ([]byte, error) { return encodeJSON(v.(*specs.Process), jsonEncodeProcess) }},
		{"State", specs.State{}, func(b []byte) (any, error) {
			var s specs.State
			return &s, decodeJSON(b, &s, jsonDecodeState)
		}, func(v any) ([]byte, error) { return encodeJSON(v.(*specs.State), jsonEncodeState) }},
		{"initConfig", initConfig{}, func(b []byte) (any, error) {
			var c initConfig
			return &c, decodeJSON(b, &c, jsonDecodeInitConfig)
		}, func(v any) ([]byte, error) { return encodeJSON(v.(*initConfig), jsonEncodeInitConfig) }},
		{"saved", saved{}, func(b []byte) (any, error) {
			var s saved
			return &s, decodeJSON(b, &s, jsonDecodeSaved)
		}, func(v any) ([]byte, error) { return encodeJSON(v.(*saved), jsonEncodeSaved) }},
		{"syncMsg", syncMsg{}, func(b []byte) (any, error) {
			var m syncMsg
			return &m, decodeJSON(b, &m, jsonDecodeSyncMsg)
		}, func(v any) ([]byte, error) { return encodeJSON(v.(*syncMsg), jsonEncodeSyncMsg) }},
	}
}

// Every field of every root, filled in: what encoding/json encodes, the
// generated decoder decodes as encoding/json does; what the generated
// encoder writes, encoding/json decodes back to the same value.
func TestJSONCodecsMatchEncodingJSON(t *testing.T) {
	for _, c := range codecCases() {
		n := 0
		filled := reflect.New(reflect.TypeOf(c.v))
		fill(filled.Elem(), &n, 0)
		b, err := json.Marshal(filled.Interface())
		if err != nil {
			t.Fatalf("%s: marshal: %v", c.name, err)
		}
		want := reflect.New(reflect.TypeOf(c.v))
		if err := json.Unmarshal(b, want.Interface()); err != nil {
			t.Fatalf("%s: encoding/json: %v", c.name, err)
		}
		got, err := c.dec(b)
		if err != nil {
			t.Fatalf("%s: generated decoder: %v", c.name, err)
		}
		if !reflect.DeepEqual(got, want.Interface()) {
			g, _ := json.Marshal(got)
			t.Errorf("%s: generated decoder differs from encoding/json\n got %s\nwant %s", c.name, g, b)
		}
		ours, err := c.enc(want.Interface())
		if err != nil {
			t.Fatalf("%s: generated encoder: %v", c.name, err)
		}
		back := reflect.New(reflect.TypeOf(c.v))
		if err := json.Unmarshal(ours, back.Interface()); err != nil {
			t.Fatalf("%s: encoding/json cannot read the generated encoding: %v\n%s", c.name, err, ours)
		}
		if !reflect.DeepEqual(back.Interface(), want.Interface()) {
			t.Errorf("%s: generated encoder loses data\n got %s\nwant %s", c.name, ours, b)
		}
		// The zero value: omitempty and null must leave out (or keep)
		// exactly what encoding/json does.
		zero := reflect.New(reflect.TypeOf(c.v))
		ours, err = c.enc(zero.Interface())
		if err != nil {
			t.Fatalf("%s: encode zero value: %v", c.name, err)
		}
		theirs, _ := json.Marshal(zero.Interface())
		var o, th any
		if err := json.Unmarshal(ours, &o); err != nil {
			t.Fatalf("%s: zero value encoding %s: %v", c.name, ours, err)
		}
		json.Unmarshal(theirs, &th)
		if !reflect.DeepEqual(o, th) {
			t.Errorf("%s: zero value encodes as %s, encoding/json as %s", c.name, ours, theirs)
		}
	}
}

// Strings that need escaping (and invalid UTF-8) read back as what
// encoding/json's own encoding of them reads back as.
func TestJSONEncoderStrings(t *testing.T) {
	for _, str := range []string{"", "plain", `q"uote\back/slash`, "ctl\x00\x01\x1f\n\r\t\b\f", "bad\xff\xfeutf8",
		"é中文\U0001F600", "js\u2028\u2029", "<html>&amp;", "\xe2\x82"} {
		b, err := encodeJSON(&syncMsg{Type: str}, jsonEncodeSyncMsg)
		if err != nil {
			t.Fatal(err)
		}
		var m syncMsg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%q encodes as %s, not JSON: %v", str, b, err)
		}
		theirs, _ := json.Marshal(&syncMsg{Type: str})
		var tm syncMsg
		json.Unmarshal(theirs, &tm)
		if tm.Type != m.Type {
			t.Errorf("%q: ours reads back as %q, encoding/json's as %q", str, m.Type, tm.Type)
		}
	}
}

// The cases where encoding/json's rules are easy to get wrong.
func TestJSONDecoderRules(t *testing.T) {
	in := `{"OCIVERSION":"1.2.0","process":{"args":["a"],"user":{"uid":7},"unknown":{"x":[1,{}]}},` +
		`"hostname":null,"mounts":[],"annotations":{"a":"b"},"linux":null,"ociVersion":"1.3.0"}`
	s, err := decodeSpec([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "1.3.0" || s.Process == nil || s.Process.User.UID != 7 || len(s.Process.Args) != 1 {
		t.Errorf("decoded %+v", s)
	}
	if s.Mounts == nil || len(s.Mounts) != 0 || s.Linux != nil || s.Annotations["a"] != "b" {
		t.Errorf("empty slice, null pointer or map decoded wrong: %+v", s)
	}
	for _, bad := range []string{``, `{`, `{"ociVersion":1}`, `{"process":{"user":{"uid":-1}}}`, `{"mounts":{}}`, `{} x`, `[]`,
		`{"process":{"args":["a",]}}`, `{"linux":{"resources":{"memory":{"limit":"x"}}}}`, `{"process":{"user":{"uid":4294967296}}}`} {
		if _, err := decodeSpec([]byte(bad)); err == nil {
			t.Errorf("%q decoded without an error", bad)
		}
	}
}

// FuzzDecodeSpec: no input panics the generated decoder, and it agrees
// with encoding/json on whether the input is acceptable.
func FuzzDecodeSpec(f *testing.F) {
	f.Add([]byte(`{"ociVersion":"1.2.0","process":{"args":["sh"],"user":{"uid":0,"gid":0}},"root":{"path":"rootfs"}}`))
	f.Add([]byte(`{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"args":[{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]}]}}}`))
	f.Add([]byte(`{"mounts":[{"destination":"/x","options":["ro"]}],"annotations":{"a":"\u00e9"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := decodeSpec(b)
		var s specs.Spec
		jerr := json.Unmarshal(b, &s)
		if (err == nil) != (jerr == nil) && jerr == nil {
			t.Errorf("%q: encoding/json accepts it, the generated decoder says %v", b, err)
		}
	})
}
