package jsonrt

import (
	"encoding/json"

	"github.com/mailru/easyjson/jlexer"
)

// The decoders of single values, one call per field in generated code.
// JSON null leaves a value as it is and sets a pointer, slice, map or
// interface to nil, as encoding/json does.

// Null skips a null and reports whether there was one.
func Null(in *jlexer.Lexer) bool {
	if in.IsNull() {
		in.Skip()
		return true
	}
	return false
}

func String[T ~string](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.String())
	}
}

func Bool[T ~bool](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Bool())
	}
}

func Int[T ~int](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Int())
	}
}

func Int8[T ~int8](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Int8())
	}
}

func Int16[T ~int16](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Int16())
	}
}

func Int32[T ~int32](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Int32())
	}
}

func Int64[T ~int64](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Int64())
	}
}

func Uint[T ~uint](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Uint())
	}
}

func Uint8[T ~uint8](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Uint8())
	}
}

func Uint16[T ~uint16](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Uint16())
	}
}

func Uint32[T ~uint32](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Uint32())
	}
}

func Uint64[T ~uint64](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Uint64())
	}
}

func Float32[T ~float32](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Float32())
	}
}

func Float64[T ~float64](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		*p = T(in.Float64())
	}
}

// Unmarshaler decodes a type that implements json.Unmarshaler.
func Unmarshaler[T any, P interface {
	*T
	json.Unmarshaler
}](in *jlexer.Lexer, p *T) {
	if !Null(in) {
		in.AddError(P(p).UnmarshalJSON(in.Raw()))
	}
}

// Any decodes an interface value as encoding/json does (maps, slices,
// float64, string, bool).
func Any(in *jlexer.Lexer, p *any) {
	if Null(in) {
		*p = nil
		return
	}
	*p = in.Interface()
}

// Bytes decodes encoding/json's base64 form of a []byte.
func Bytes(in *jlexer.Lexer, p *[]byte) {
	if Null(in) {
		*p = nil
		return
	}
	*p = in.Bytes()
}

// Nilable decodes a slice or map with dec, which sees no null.
func Nilable[T any](in *jlexer.Lexer, p *T, dec func(*jlexer.Lexer, *T)) {
	if Null(in) {
		var zero T
		*p = zero
		return
	}
	dec(in, p)
}

// Ptr decodes into *p with dec, allocating it when nil.
func Ptr[T any](in *jlexer.Lexer, p **T, dec func(*jlexer.Lexer, *T)) {
	if Null(in) {
		*p = nil
		return
	}
	if *p == nil {
		*p = new(T)
	}
	dec(in, *p)
}
