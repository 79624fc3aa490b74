package serve

import (
	"context"
	"errors"
	"strings"

	bindings "github.com/duckdb/duckdb-go-bindings"
)

// toPGError maps any error to the PostgreSQL error a client receives.
func toPGError(err error) *pgError {
	var pe *pgError
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, context.Canceled) {
		return &pgError{code: "57014", msg: "canceling statement due to user request"}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &pgError{code: "57014", msg: "canceling statement due to statement timeout"}
	}
	var de *duckErr
	if !errors.As(err, &de) {
		return &pgError{code: "XX000", msg: err.Error()}
	}
	code := "XX000"
	switch de.class {
	case bindings.ErrorTypeParser, bindings.ErrorTypeSyntax:
		code = "42601"
	case bindings.ErrorTypeCatalog:
		code = "42P01"
		if strings.Contains(de.msg, "Function") || strings.Contains(de.msg, "function") {
			code = "42883"
		}
	case bindings.ErrorTypeBinder:
		code = "42703"
		if strings.Contains(de.msg, "function") || strings.Contains(de.msg, "Function") {
			code = "42883"
		}
	case bindings.ErrorTypeConversion, bindings.ErrorTypeInvalidInput:
		code = "22P02"
	case bindings.ErrorTypeOutOfRange:
		code = "22003"
	case bindings.ErrorTypeDivideByZero:
		code = "22012"
	case bindings.ErrorTypePermission:
		return &pgError{code: "42501", msg: de.msg, hint: readOnlyHint}
	case bindings.ErrorTypeTransaction:
		code = "25000"
		if strings.Contains(de.msg, "read-only") || strings.Contains(de.msg, "read only") {
			return &pgError{code: "25006", msg: de.msg, hint: readOnlyHint}
		}
	case bindings.ErrorTypeInterrupt:
		code = "57014"
	case bindings.ErrorTypeNotImplemented:
		code = "0A000"
	case bindings.ErrorTypeOutOfMemory:
		code = "53200"
	case bindings.ErrorTypeConstraint:
		code = "23000"
	case bindings.ErrorTypeParameterNotResolved:
		code = "42P18"
	}
	return &pgError{code: code, msg: de.msg}
}
