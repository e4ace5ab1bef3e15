//go:build tools

// Package versitygw only pins Versity's S3 gateway command (see go.mod).
package versitygw

import _ "github.com/versity/versitygw/cmd/versitygw"
