//go:build !goexperiment.jsonv2

package jsonv2

import (
	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
