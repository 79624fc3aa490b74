package transform

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// Errors a value conversion wraps; FieldError carries them with the record's context.
var (
	ErrType      = errors.New("wrong JSON type")
	ErrTimestamp = errors.New("not a timestamp")
	ErrDecimal   = errors.New("not a decimal that fits DECIMAL(38,10)")
	ErrNumber    = errors.New("not an integer")
)

// secondsCutoff separates epoch seconds from epoch milliseconds: 1e11 s is the year 5138, 1e11 ms
// is 1973, so the AppDirect lead list's 10-digit values read as seconds and the rest as ms.
const secondsCutoff = 100_000_000_000

// ParseEpoch converts an epoch number in seconds or milliseconds (decided by magnitude) to
// microseconds since the epoch, UTC.
func ParseEpoch(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
			return 0, fmt.Errorf("%w: %q", ErrTimestamp, s)
		}
		if math.Abs(f) < secondsCutoff {
			return int64(math.Round(f * 1e6)), nil
		}
		return int64(math.Round(f * 1e3)), nil
	}
	if n > -secondsCutoff && n < secondsCutoff {
		return n * 1_000_000, nil
	}
	if n > 1e15 || n < -1e15 {
		return 0, fmt.Errorf("%w: %q is out of range", ErrTimestamp, s)
	}
	return n * 1000, nil
}

var isoLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02"}

// ParseTimestamp converts any timestamp form the documents use (epoch s or ms as a number or
// numeric string, ISO-8601 with or without offset, a bare date) to UTC microseconds. Times
// without an offset are read as UTC.
func ParseTimestamp(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty string", ErrTimestamp)
	}
	if c := s[0]; c == '-' || (c >= '0' && c <= '9') {
		if !strings.ContainsAny(s, "T:/") && (len(s) < 5 || s[4] != '-' || c == '-') {
			return ParseEpoch(s)
		}
	}
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrTimestamp, truncate(s, 64))
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000}

// ParseDecimal converts decimal text (a JSON number or a numeric string) to DECIMAL(38,10)
// exactly; it never goes through float64. More than 10 significant fraction digits is an error
// rather than a silent rounding.
func ParseDecimal(s string) (decimal128.Num, error) {
	const scale = 10
	bad := func() (decimal128.Num, error) {
		return decimal128.Num{}, fmt.Errorf("%w: %q", ErrDecimal, truncate(s, 64))
	}
	if s == "" {
		return bad()
	}
	i, neg := 0, false
	if s[0] == '-' || s[0] == '+' {
		neg, i = s[0] == '-', 1
	}
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intDigits := s[intStart:i]
	var frac string
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		frac, i = s[i+1:j], j
	}
	if i != len(s) {
		if s[i] == 'e' || s[i] == 'E' { // exponent: rare, take the exact slow path
			return slowDecimal(s, bad)
		}
		return bad()
	}
	if intDigits == "" && frac == "" {
		return bad()
	}
	trimmed := strings.TrimRight(frac, "0")
	if len(trimmed) > scale {
		return bad()
	}
	intDigits = strings.TrimLeft(intDigits, "0")
	if len(intDigits) > 38-scale {
		return bad()
	}
	if len(intDigits) <= 8 { // fits int64 after scaling: the fast path for money
		var v int64
		for k := 0; k < len(intDigits); k++ {
			v = v*10 + int64(intDigits[k]-'0')
		}
		v *= pow10[scale]
		var f int64
		for k := 0; k < len(trimmed); k++ {
			f = f*10 + int64(trimmed[k]-'0')
		}
		v += f * pow10[scale-len(trimmed)]
		if neg {
			v = -v
		}
		return decimal128.FromI64(v), nil
	}
	return slowDecimal(s, bad)
}

// slowDecimal handles exponents and values too wide for the int64 fast path, exactly, with
// math/big and a bounded exponent. (arrow's decimal128.FromString panics on "1E1000000000".)
func slowDecimal(s string, bad func() (decimal128.Num, error)) (decimal128.Num, error) {
	mant, exp := s, 0
	if k := strings.IndexAny(s, "eE"); k >= 0 {
		e, err := strconv.Atoi(s[k+1:])
		if err != nil || e > 40 || e < -60 {
			return bad()
		}
		mant, exp = s[:k], e
	}
	neg := false
	if mant != "" && (mant[0] == '-' || mant[0] == '+') {
		neg, mant = mant[0] == '-', mant[1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return bad()
	}
	v, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return bad()
	}
	shift := exp - len(frac) + 10 // value * 10^10 = digits * 10^shift
	ten := big.NewInt(10)
	if shift >= 0 {
		v.Mul(v, new(big.Int).Exp(ten, big.NewInt(int64(shift)), nil))
	} else {
		q, r := new(big.Int).QuoRem(v, new(big.Int).Exp(ten, big.NewInt(int64(-shift)), nil), new(big.Int))
		if r.Sign() != 0 {
			return bad() // more than 10 significant fraction digits
		}
		v = q
	}
	if v.CmpAbs(new(big.Int).Exp(ten, big.NewInt(38), nil)) >= 0 {
		return bad()
	}
	if neg {
		v.Neg(v)
	}
	return decimal128.FromBigInt(v), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
