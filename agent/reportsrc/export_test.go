package reportsrc

import "io"

// DetectWith is Detect looking only at the paths exists says exist, with
// openTPM standing for opening TPMPath.
func DetectWith(exists func(string) bool, openTPM func() (io.ReadWriteCloser, error)) (Source, error) {
	return detector{exists: exists, openTPM: openTPM}.detect()
}
