package jsongen

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

func (g *gen) structEncoder(t reflect.Type) error {
	name := "jsonEncode" + g.names[t]
	tn, fs, err := g.structParts(t)
	if err != nil {
		return err
	}
	b := g.begin()
	fmt.Fprintf(b, "\n// %s encodes a %s.\nfunc %s(w *jsonrt.Out, v *%s) {\n\tw.Byte('{')\n", name, tn, name, tn)
	if len(fs) > 0 {
		b.WriteString("\tfirst := true\n")
	}
	for _, f := range fs {
		x := "v." + f.path
		depth := 1
		cond := ""
		if f.omitEmpty {
			cond = nonEmpty(f.t, x)
		}
		if cond != "" {
			fmt.Fprintf(b, "\tif %s {\n", cond)
			depth = 2
		}
		k, _ := json.Marshal(f.key)
		fmt.Fprintf(b, "%sw.Key(&first, %s)\n", strings.Repeat("\t", depth), strconv.Quote(string(k)+":"))
		enc := g.encValue
		if cond != "" && f.t.Kind() == reflect.Pointer {
			enc = g.encPointee // known not to be nil here
		}
		if err := enc(f.t, x, depth); err != nil {
			return fmt.Errorf("%s.%s: %w", t, f.path, err)
		}
		if cond != "" {
			b.WriteString("\t}\n")
		}
	}
	b.WriteString("\tw.Byte('}')\n}\n")
	g.end()
	return nil
}

// compositeEncoder writes the encoder of a slice or map type.
func (g *gen) compositeEncoder(t reflect.Type) error {
	name := "jsonEncode" + g.names[t]
	tn, err := g.typeName(t)
	if err != nil {
		return err
	}
	b := g.begin()
	fmt.Fprintf(b, "\n// %s encodes a %s.\nfunc %s(w *jsonrt.Out, v %s) {\n", name, tn, name, tn)
	b.WriteString("\tif v == nil {\n\t\tw.Null()\n\t\treturn\n\t}\n")
	if t.Kind() == reflect.Slice {
		b.WriteString("\tw.Byte('[')\n\tfor i := range v {\n\t\tif i > 0 {\n\t\t\tw.Byte(',')\n\t\t}\n")
		if err := g.encValue(t.Elem(), "v[i]", 2); err != nil {
			return err
		}
		b.WriteString("\t}\n\tw.Byte(']')\n}\n")
		g.end()
		return nil
	}
	b.WriteString("\tw.Byte('{')\n\tfor i, k := range jsonrt.SortedKeys(v) {\n\t\tif i > 0 {\n\t\t\tw.Byte(',')\n\t\t}\n")
	b.WriteString("\t\tw.Str(string(k))\n\t\tw.Byte(':')\n\t\te := v[k]\n")
	if err := g.encValue(t.Elem(), "e", 2); err != nil {
		return err
	}
	b.WriteString("\t}\n\tw.Byte('}')\n}\n")
	g.end()
	return nil
}

// nonEmpty is the condition under which omitempty keeps x ("" for
// always: encoding/json never omits a struct).
func nonEmpty(t reflect.Type, x string) string {
	switch t.Kind() {
	case reflect.Bool:
		return x
	case reflect.String:
		return x + ` != ""`
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return x + " != 0"
	case reflect.Pointer, reflect.Interface:
		return x + " != nil"
	case reflect.Slice, reflect.Map:
		return "len(" + x + ") != 0"
	}
	return ""
}

// encValue emits code writing x (an addressable expression of type t).
func (g *gen) encValue(t reflect.Type, x string, depth int) error {
	b := g.body
	ind := strings.Repeat("\t", depth)
	if t.Implements(marshaler) && t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		fmt.Fprintf(b, "%sw.Marshaler(%s)\n", ind, x)
		return nil
	}
	switch t.Kind() {
	case reflect.Bool:
		fmt.Fprintf(b, "%sw.Bool(bool(%s))\n", ind, x)
	case reflect.String:
		fmt.Fprintf(b, "%sw.Str(string(%s))\n", ind, x)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		fmt.Fprintf(b, "%sw.Int(int64(%s))\n", ind, x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		fmt.Fprintf(b, "%sw.Uint(uint64(%s))\n", ind, x)
	case reflect.Struct:
		if t.Name() == "" {
			return fmt.Errorf("jsongen: anonymous struct %s is not supported", t)
		}
		fmt.Fprintf(b, "%s%s(w, &%s)\n", ind, g.encoderFor(t), x)
	case reflect.Interface:
		fmt.Fprintf(b, "%sw.Any(%s)\n", ind, x)
	case reflect.Pointer:
		fmt.Fprintf(b, "%sif %s == nil {\n%s\tw.Null()\n%s} else {\n", ind, x, ind, ind)
		if err := g.encPointee(t, x, depth+1); err != nil {
			return err
		}
		fmt.Fprintf(b, "%s}\n", ind)
	case reflect.Slice, reflect.Map:
		if isBytes(t) {
			fmt.Fprintf(b, "%sif %s == nil {\n%s\tw.Null()\n%s} else {\n%s\tw.Bytes(%s)\n%s}\n", ind, x, ind, ind, ind, x, ind)
			return nil
		}
		if t.Kind() == reflect.Map && t.Key().Kind() != reflect.String {
			return fmt.Errorf("jsongen: map key %s is not a string", t.Key())
		}
		fmt.Fprintf(b, "%s%s(w, %s)\n", ind, g.encoderFor(t), x)
	default:
		return fmt.Errorf("jsongen: %s is not supported", t)
	}
	return nil
}

// encPointee emits code writing what the non-nil pointer x (of type t)
// points to.
func (g *gen) encPointee(t reflect.Type, x string, depth int) error {
	if e := t.Elem(); e.Kind() == reflect.Struct && e.Name() != "" && !e.Implements(marshaler) {
		fmt.Fprintf(g.body, "%s%s(w, %s)\n", strings.Repeat("\t", depth), g.encoderFor(e), x)
		return nil
	}
	return g.encValue(t.Elem(), "(*"+x+")", depth)
}
