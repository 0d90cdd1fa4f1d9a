package oci

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/mailru/easyjson/jlexer"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
	"hull/internal/jsonrt"
)

// The documents every hullrt command reads or writes (config.json, the
// init's config and sync messages, state.json, exec --process, the hooks'
// state) go through generated codecs (ocijson_gen.go, see
// internal/jsongen): encoding/json's first use of a specs.Spec in a process
// costs ~1.5 ms of reflection, which create paid for config.json and the
// container's init again for its config.
//
// After changing initConfig, saved or the runtime-spec version, regenerate
// (TestJSONDecodersGenerated fails until then); the bootstrap tag builds
// the package on ocijson_stub.go instead of the file being rewritten:
//
//go:generate go test -tags jsongen_bootstrap -run ^TestJSONDecodersGenerated$ . -args -update-json

// jsonRoots are the types with generated codecs: jsonDecode<name> and
// jsonEncode<name>.
var jsonRoots = []struct {
	name string
	v    any
}{
	{"Spec", specs.Spec{}},
	{"Process", specs.Process{}},
	{"State", specs.State{}},
	{"InitConfig", initConfig{}},
	{"Saved", saved{}},
	{"SyncMsg", syncMsg{}},
}

// decodeJSON decodes document b into out with a generated decoder. On
// failure it lets encoding/json describe what is wrong (its messages name
// the field and the types), which costs only on the error path.
func decodeJSON[T any](b []byte, out *T, dec func(*jlexer.Lexer, *T)) error {
	in := jlexer.Lexer{Data: b}
	dec(&in, out)
	in.Consumed()
	if err := in.Error(); err != nil {
		var again T
		if jerr := json.Unmarshal(b, &again); jerr != nil {
			return jerr
		}
		return err
	}
	return nil
}

// decodeSpec parses a config.json document (not validated).
func decodeSpec(b []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := decodeJSON(b, &s, jsonDecodeSpec); err != nil {
		return nil, err
	}
	return &s, nil
}

// DecodeProcess parses a process document (exec --process), not validated.
func DecodeProcess(b []byte) (*specs.Process, error) {
	var p specs.Process
	if err := decodeJSON(b, &p, jsonDecodeProcess); err != nil {
		return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	return &p, nil
}

// readJSON reads the next document of a stream (the sync socket) into out
// with a generated decoder.
func readJSON[T any](d *json.Decoder, out *T, dec func(*jlexer.Lexer, *T)) error {
	var raw json.RawMessage
	if err := d.Decode(&raw); err != nil {
		return err
	}
	return decodeJSON(raw, out, dec)
}

// encodeJSON encodes v with a generated encoder.
func encodeJSON[T any](v *T, enc func(*jsonrt.Out, *T)) ([]byte, error) {
	w := jsonrt.NewOut(2048)
	enc(w, v)
	return w.Result()
}

// writeJSON writes v as the next document of a stream (one line).
func writeJSON[T any](w io.Writer, v *T, enc func(*jsonrt.Out, *T)) error {
	b, err := encodeJSON(v, enc)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
