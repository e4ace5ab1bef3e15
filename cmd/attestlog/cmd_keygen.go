package main

import (
	"fmt"

	"github.com/attestlog/attestlog/internal/keyfile"
)

func init() {
	register("keygen", "create a log, witness, operator or auditor key", runKeygen)
}

func runKeygen(args []string) error {
	fs := newFlagSet("keygen", "--kind log|witness|operator|auditor --name NAME --out FILE")
	kind := fs.String("kind", "", "key kind: log, witness, operator or auditor")
	name := fs.String("name", "", "key name (a log key's name is its origin, e.g. example.com/attestlog)")
	out := fs.String("out", "", "private key file to create (mode 0600; never overwritten)")
	alg := fs.String("alg", "ed25519", "operator/auditor key algorithm: ed25519 or ecdsa-p256")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *kind == "" || *name == "" || *out == "" {
		fmt.Fprintln(fs.Output(), "--kind, --name and --out are required")
		fs.Usage()
		return errUsage
	}
	g, err := keyfile.Generate(*kind, *name, *out, *alg)
	if err != nil {
		return err
	}
	// The verifier key on stdout, for scripts; a hint on stderr.
	fmt.Println(g.Public)
	switch *kind {
	case keyfile.KindLog:
		fmt.Fprintf(stderr, "wrote %s; in a client policy: log %s\n", *out, g.Public)
	case keyfile.KindWitness:
		fmt.Fprintf(stderr, "wrote %s; in a log's witness policy: witness %s %s https://WITNESS-URL\n", *out, *name, g.Public)
	default:
		fmt.Fprintf(stderr, "wrote %s; in a policy: %s %s %s\n", *out, *kind, *name, g.Public)
	}
	return nil
}
