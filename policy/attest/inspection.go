package attest

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/attestlog/attestlog/policy/evidence"
)

// An Inspection is evidence verified on its own (Verifier.Inspect) with
// what it arrived as: what 'attestlog inspect' prints.
type Inspection struct {
	Kind   evidence.Kind
	Bundle *evidence.Bundle
	*Result
}

// InspectAs verifies b, which arrived as kind.
func (v *Verifier) InspectAs(b *evidence.Bundle, kind evidence.Kind) Inspection {
	return Inspection{Kind: kind, Bundle: b, Result: v.Inspect(b)}
}

// MarshalJSON is the kind, the verdict, the result's checks and fields,
// the channel key and whether a proof is stapled.
func (in Inspection) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Kind evidence.Kind `json:"kind"`
		OK   bool          `json:"ok"`
		*Result
		ChannelKey []byte `json:"channel_key,omitempty"`
		HasProof   bool   `json:"has_proof"`
	}{in.Kind, in.OK(), in.Result, in.Bundle.ChannelKey, in.Bundle.Proof != ""})
}

// WriteText writes the kind and platform, the checks, then one
// "field<TAB>value" line per report field (nested fields dotted).
func (in Inspection) WriteText(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "%s (%s)\n\n%s\n", in.Kind, in.Bundle.Platform, in.Checks); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	switch {
	case in.SNP != nil:
		writeFields(tw, "", reflect.ValueOf(*in.SNP))
	case in.TDX != nil:
		writeFields(tw, "", reflect.ValueOf(*in.TDX))
	}
	if in.VTPM != nil {
		in.VTPM.writeText(tw)
	}
	if in.Endorsement != nil {
		fmt.Fprintf(tw, "firmware_endorsement\t%s\n", in.Endorsement)
	}
	if in.Bundle.TDXCollateral != nil {
		fmt.Fprintf(tw, "stapled_collateral\tTCB info, QE identity, PCK CRL, root CA CRL\n")
	}
	if len(in.Bundle.EventLog) > 0 {
		fmt.Fprintf(tw, "stapled_event_log\t%d bytes\n", len(in.Bundle.EventLog))
	}
	if len(in.Bundle.ChannelKey) > 0 {
		fmt.Fprintf(tw, "channel_key\t%x\n", in.Bundle.ChannelKey)
	}
	if in.Bundle.Proof != "" {
		fmt.Fprintf(tw, "proof\tstapled (%d bytes)\n", len(in.Bundle.Proof))
	}
	return tw.Flush()
}

// writeFields writes a fields struct one "json_name<TAB>value" line per
// exported field, nested structs (and non-nil pointers to them) with a
// dotted prefix, or on one line when they are a fmt.Stringer; an
// omitempty field that is empty is left out, as in the JSON.
func writeFields(w io.Writer, prefix string, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if !t.Field(i).IsExported() {
			continue
		}
		f := v.Field(i)
		if strings.Contains(opts, "omitempty") && f.IsZero() {
			continue
		}
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				continue
			}
			f = f.Elem()
		}
		if f.Kind() == reflect.Struct {
			if s, ok := f.Interface().(fmt.Stringer); ok {
				fmt.Fprintf(w, "%s%s\t%s\n", prefix, name, s)
				continue
			}
			writeFields(w, prefix+name+".", f)
			continue
		}
		fmt.Fprintf(w, "%s%s\t%v\n", prefix, name, f.Interface())
	}
}
