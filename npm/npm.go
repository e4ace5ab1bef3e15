// Package npm holds the npm package @attestlog/verify's JavaScript and
// manifest, for what serves or reports them: the explorer's "Verify an
// enclave" page runs the package's own index.js, and `attestlog version`
// names the package version this source builds. (The package itself is
// this directory; internal/wasmbuild builds its WebAssembly module.)
package npm

import (
	_ "embed"
	"encoding/json"
)

// IndexJS is the package's index.js.
//
//go:embed index.js
var IndexJS []byte

//go:embed package.json
var manifest []byte

// Name and Version are the package's name and version (package.json):
// the WebAssembly module built from this source reports this version.
var Name, Version = func() (string, string) {
	var m struct{ Name, Version string }
	if err := json.Unmarshal(manifest, &m); err != nil || m.Name == "" || m.Version == "" {
		panic("npm/package.json has no name or version")
	}
	return m.Name, m.Version
}()
