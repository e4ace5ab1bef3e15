package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// checkMembers reads the JSON value in b as a value of type t and refuses
// what encoding/json lets through: a member name given twice in one
// object (encoding/json keeps the last; another reader may keep the
// first), and a member name that differs from the documented one only in
// case (encoding/json matches names case-insensitively). Either would let
// two conforming readers see two different bundles in the same bytes
// (docs/spec/evidence.md, "Encoding"). Unknown members, types and
// trailing data are left to the decoder.
func checkMembers(b []byte, t reflect.Type) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return walkMembers(d, t, "")
}

// walkMembers reads one value from d, checking the member names of every
// object that maps to a struct.
func walkMembers(d *json.Decoder, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := d.Token()
	if err != nil {
		return err
	}
	delim, isDelim := tok.(json.Delim)
	switch {
	case !isDelim:
		return nil // a scalar (or null): its type is the decoder's question
	case delim == '{' && t.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.IsExported() && name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		seen := map[string]bool{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return err
			}
			name, _ := k.(string)
			ft, ok := fields[name]
			if !ok {
				for known := range fields {
					if strings.EqualFold(known, name) {
						return fmt.Errorf("member %q: names are case-sensitive, the member is %q", path+name, path+known)
					}
				}
				// Unknown: the decoder refuses it by name.
				if err := skipValue(d); err != nil {
					return err
				}
				continue
			}
			if seen[name] {
				return fmt.Errorf("member %q given twice", path+name)
			}
			seen[name] = true
			if err := walkMembers(d, ft, path+name+"."); err != nil {
				return err
			}
		}
	case delim == '[' && t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		for i := 0; d.More(); i++ {
			if err := walkMembers(d, t.Elem(), fmt.Sprintf("%s%d.", path, i)); err != nil {
				return err
			}
		}
	default:
		// An object or array where the type wants something else: the
		// decoder refuses it; skip it here.
		if err := skipRest(d); err != nil {
			return err
		}
		return nil
	}
	_, err = d.Token() // the closing delimiter
	return err
}

// skipValue reads and discards one value.
func skipValue(d *json.Decoder) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	if _, ok := tok.(json.Delim); ok {
		return skipRest(d)
	}
	return nil
}

// skipRest discards the rest of an object or array whose opening
// delimiter was read, closing delimiter included.
func skipRest(d *json.Decoder) error {
	for depth := 1; depth > 0; {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}
