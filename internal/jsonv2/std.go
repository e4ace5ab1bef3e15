//go:build goexperiment.jsonv2

package jsonv2

import (
	"encoding/json/jsontext"
	json "encoding/json/v2"
)

type (
	Options        = json.Options
	SemanticError  = json.SemanticError
	Decoder        = jsontext.Decoder
	Value          = jsontext.Value
	Kind           = jsontext.Kind
	SyntacticError = jsontext.SyntacticError
)

var ErrUnknownName = json.ErrUnknownName

func Unmarshal(in []byte, out any, opts ...Options) error { return json.Unmarshal(in, out, opts...) }

func UnmarshalDecode(in *Decoder, out any, opts ...Options) error {
	return json.UnmarshalDecode(in, out, opts...)
}

func RejectUnknownMembers(v bool) Options { return json.RejectUnknownMembers(v) }
