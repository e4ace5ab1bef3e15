package witness

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/attestlog/attestlog/witness/internal/store"

	"github.com/attestlog/attestlog/internal/httpbody"
)

// Errors of add-checkpoint, each answered with the status code the
// specification names for it (see statusCode).
var (
	// ErrUnknownLog: the checkpoint origin is not a log this witness knows
	// (never added, or removed). 404.
	ErrUnknownLog = store.ErrUnknownLog
	// ErrMalformed: the request body, the note or the checkpoint does not
	// follow its format, or old > checkpoint size. 400.
	ErrMalformed = errors.New("malformed request")
	// ErrSignature: no signature from a trusted key of the origin, or one
	// that fails to verify. 403.
	ErrSignature = errors.New("no valid signature from a key of this log")
	// ErrInconsistent: a consistency proof that does not verify, a proof
	// with old 0, a same-size checkpoint with a different root, or a size-0
	// checkpoint whose root is not the empty tree's. 422.
	ErrInconsistent = errors.New("checkpoint not consistent with the latest cosigned one")
)

// ConflictError is the 409 answer: the old size of the request is not the
// size of the latest cosigned checkpoint, Size.
type ConflictError struct {
	Size uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("old size does not match the latest cosigned size %d", e.Size)
}

// statusCode maps an add-checkpoint error to its HTTP status. It is the only
// place that does.
func statusCode(err error) int {
	var ce *ConflictError
	if code, ok := httpbody.Status(err); ok {
		return code
	}
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &ce):
		return http.StatusConflict
	case errors.Is(err, ErrUnknownLog):
		return http.StatusNotFound
	case errors.Is(err, ErrSignature):
		return http.StatusForbidden
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, ErrInconsistent):
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}
