//go:build !(cgo && linux)

package reportsrc

import "errors"

// NVMLAvailable reports whether this build can read GPUs through NVML.
const NVMLAvailable = false

// OpenNVML fails: go-nvml loads libnvidia-ml through cgo, and this build
// has none.
func OpenNVML() (GPUSource, error) {
	return nil, errors.New("NVML: this build of attestlog has no cgo (go-nvml needs it to load libnvidia-ml); build with CGO_ENABLED=1")
}
