package diag

import (
	"errors"
	"fmt"
)

// Error classes behind DESIGN.md's exit codes. cmd/mxray maps them (and the
// dnsx sentinels) to 1, 2 and 3 in one place; commands wrap their errors
// with the class that fits.
var (
	// ErrFinding: the check found a problem (exit 1).
	ErrFinding = errors.New("problem found")
	// ErrUsage: bad usage, unreadable input, a missing secret, a
	// destructive action without --yes (exit 2).
	ErrUsage = errors.New("usage")
	// ErrUnchecked: could not check — resolver or network unreachable,
	// deadline passed, temperror, internal error (exit 3).
	ErrUnchecked = errors.New("could not check")
)

// Found is returned by a command that has already shown its findings and
// only needs exit code 1; nothing more is printed.
var Found = fmt.Errorf("%w", ErrFinding)

// Usagef returns a usage error (exit 2) with its message.
func Usagef(format string, args ...any) error {
	return &classed{class: ErrUsage, err: fmt.Errorf(format, args...)}
}

// Uncheckedf returns a could-not-check error (exit 3) with its message.
func Uncheckedf(format string, args ...any) error {
	return &classed{class: ErrUnchecked, err: fmt.Errorf(format, args...)}
}

// Findingf returns a finding error (exit 1) with its message.
func Findingf(format string, args ...any) error {
	return &classed{class: ErrFinding, err: fmt.Errorf(format, args...)}
}

type classed struct {
	class error
	err   error
}

func (c *classed) Error() string   { return c.err.Error() }
func (c *classed) Unwrap() []error { return []error{c.class, c.err} }
