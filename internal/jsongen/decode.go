package jsongen

import (
	"fmt"
	"reflect"
	"strings"
)

func (g *gen) structDecoder(t reflect.Type) error {
	name := "jsonDecode" + g.names[t]
	tn, fs, err := g.structParts(t)
	if err != nil {
		return err
	}
	var keys []string
	for _, f := range fs {
		keys = append(keys, fmt.Sprintf("%q", f.key))
	}
	b := g.begin()
	fmt.Fprintf(b, "\nvar %sKeys = []string{%s}\n", name, strings.Join(keys, ", "))
	fmt.Fprintf(b, "\n// %s decodes a %s.\nfunc %s(in *jlexer.Lexer, out *%s) {\n", name, tn, name, tn)
	fmt.Fprintf(b, "\tif in.IsNull() {\n\t\tin.Skip()\n\t\treturn\n\t}\n")
	fmt.Fprintf(b, "\tjsonrt.Object(in, %sKeys, func(key string) bool {\n\t\tswitch key {\n", name)
	for _, f := range fs {
		fmt.Fprintf(b, "\t\tcase %q:\n", f.key)
		if err := g.value(f.t, "out."+f.path, 3); err != nil {
			return fmt.Errorf("%s.%s: %w", t, f.path, err)
		}
	}
	b.WriteString("\t\tdefault:\n\t\t\treturn false\n\t\t}\n\t\treturn true\n\t})\n}\n")
	g.end()
	return nil
}

// compositeDecoder writes the decoder of a slice or map type (called for a
// non-null value).
func (g *gen) compositeDecoder(t reflect.Type) error {
	name := "jsonDecode" + g.names[t]
	tn, err := g.typeName(t)
	if err != nil {
		return err
	}
	en, err := g.typeName(t.Elem())
	if err != nil {
		return err
	}
	b := g.begin()
	fmt.Fprintf(b, "\n// %s decodes a %s.\nfunc %s(in *jlexer.Lexer, out *%s) {\n", name, tn, name, tn)
	if t.Kind() == reflect.Slice {
		fmt.Fprintf(b, "\tin.Delim('[')\n\t*out = %s{}\n\tfor in.Ok() && !in.IsDelim(']') {\n\t\tvar v %s\n", tn, en)
		if err := g.value(t.Elem(), "v", 2); err != nil {
			return err
		}
		b.WriteString("\t\t*out = append(*out, v)\n\t\tin.WantComma()\n\t}\n\tin.Delim(']')\n}\n")
		g.end()
		return nil
	}
	kn, err := g.typeName(t.Key())
	if err != nil {
		return err
	}
	fmt.Fprintf(b, "\tin.Delim('{')\n\tif *out == nil {\n\t\t*out = %s{}\n\t}\n", tn)
	fmt.Fprintf(b, "\tfor in.Ok() && !in.IsDelim('}') {\n\t\tk := %s(in.String())\n\t\tin.WantColon()\n\t\tvar v %s\n", kn, en)
	if err := g.value(t.Elem(), "v", 2); err != nil {
		return err
	}
	b.WriteString("\t\t(*out)[k] = v\n\t\tin.WantComma()\n\t}\n\tin.Delim('}')\n}\n")
	g.end()
	return nil
}

// value emits the statement decoding the next JSON value into target (an
// addressable expression of type t).
func (g *gen) value(t reflect.Type, target string, depth int) error {
	stmt, err := g.decodeStmt(t, "&"+target)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.body, "%s%s\n", strings.Repeat("\t", depth), stmt)
	return nil
}

// basicDecoders are jsonrt's decoders by kind.
var basicDecoders = map[reflect.Kind]string{
	reflect.Bool: "Bool", reflect.String: "String",
	reflect.Int: "Int", reflect.Int8: "Int8", reflect.Int16: "Int16", reflect.Int32: "Int32", reflect.Int64: "Int64",
	reflect.Uint: "Uint", reflect.Uint8: "Uint8", reflect.Uint16: "Uint16", reflect.Uint32: "Uint32", reflect.Uint64: "Uint64",
	reflect.Float32: "Float32", reflect.Float64: "Float64",
}

func implementsUnmarshaler(t reflect.Type) bool {
	return t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(unmarshaler)
}

// decodeStmt is the call decoding into addr (a *t expression).
func (g *gen) decodeStmt(t reflect.Type, addr string) (string, error) {
	switch {
	case implementsUnmarshaler(t):
		return "jsonrt.Unmarshaler(in, " + addr + ")", nil
	case basicDecoders[t.Kind()] != "":
		return "jsonrt." + basicDecoders[t.Kind()] + "(in, " + addr + ")", nil
	case isBytes(t):
		return "jsonrt.Bytes(in, " + addr + ")", nil
	}
	switch t.Kind() {
	case reflect.Struct:
		// The struct decoder leaves the value alone on null itself.
		f, err := g.decodeFunc(t)
		return f + "(in, " + addr + ")", err
	case reflect.Slice, reflect.Map:
		f, err := g.decodeFunc(t)
		return "jsonrt.Nilable(in, " + addr + ", " + f + ")", err
	case reflect.Pointer:
		f, err := g.decodeFunc(t.Elem())
		return "jsonrt.Ptr(in, " + addr + ", " + f + ")", err
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return "", fmt.Errorf("jsongen: interface %s is not supported", t)
		}
		return "jsonrt.Any(in, " + addr + ")", nil
	}
	return "", fmt.Errorf("jsongen: %s is not supported", t)
}

// decodeFunc is a func(*jlexer.Lexer, *T) value for t (what a pointer or
// a slice or map decoder calls).
func (g *gen) decodeFunc(t reflect.Type) (string, error) {
	tn, err := g.typeName(t)
	if err != nil {
		return "", err
	}
	switch {
	case implementsUnmarshaler(t):
		return "jsonrt.Unmarshaler[" + tn + "]", nil
	case basicDecoders[t.Kind()] != "":
		return "jsonrt." + basicDecoders[t.Kind()] + "[" + tn + "]", nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.Name() == "" {
			return "", fmt.Errorf("jsongen: anonymous struct %s is not supported", t)
		}
		return g.decoderFor(t), nil
	case reflect.Slice, reflect.Map:
		if isBytes(t) {
			return "jsonrt.Bytes", nil
		}
		if t.Kind() == reflect.Map && t.Key().Kind() != reflect.String {
			return "", fmt.Errorf("jsongen: map key %s is not a string", t.Key())
		}
		return g.decoderFor(t), nil
	}
	return "", fmt.Errorf("jsongen: %s behind a pointer is not supported", t)
}
