//go:build tools

// Package seaweedfs only pins SeaweedFS's weed command (see go.mod).
package seaweedfs

import _ "github.com/seaweedfs/seaweedfs/weed"
