package transform

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

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

// ParseEpoch converts an epoch number in seconds or milliseconds to microseconds since the epoch,
// UTC. Only plausible epochs are read, so that a short number is never taken for a date in 1970:
//
//   - 0, the epoch itself (what APIs send for "never");
//   - else 9 to 13 digits without a sign, a leading zero or an exponent, optionally with a
//     fraction: below 10^11 it is seconds, else milliseconds, so both units cover 1973-03-03 to
//     5138-11-16. Digits below the microsecond are truncated (TIMESTAMPTZ holds microseconds).
//
// Anything else (negative numbers, fewer than 9 or more than 13 digits, exponents) is an error
// wrapping ErrTimestamp.
func ParseEpoch(s string) (int64, error) {
	if s == "0" {
		return 0, nil
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if len(intPart) < 9 || len(intPart) > 13 || intPart[0] == '0' || !allDigits(intPart) || (hasFrac && (frac == "" || !allDigits(frac))) {
		return 0, fmt.Errorf("%w: %q is not a plausible epoch (want 0, or 9 to 13 digits: seconds below 10^11, else milliseconds)", ErrTimestamp, truncate(s, 64))
	}
	var n int64
	for k := 0; k < len(intPart); k++ {
		n = n*10 + int64(intPart[k]-'0')
	}
	digits := 6 // fraction digits that are whole microseconds
	unit := int64(1_000_000)
	if n >= secondsCutoff {
		digits, unit = 3, 1000
	}
	us := n * unit
	var f int64
	for k := 0; k < digits; k++ {
		f *= 10
		if k < len(frac) {
			f += int64(frac[k] - '0')
		}
	}
	return us + f, nil
}

func allDigits(s string) bool {
	for k := 0; k < len(s); k++ {
		if s[k] < '0' || s[k] > '9' {
			return false
		}
	}
	return true
}

// ParseTimestamp converts any timestamp form the documents use to UTC microseconds:
//
//   - epoch seconds or milliseconds as a number or numeric string (ParseEpoch's rule);
//   - 8 digits, the ISO 8601 basic date YYYYMMDD (20250326 is 2025-03-26, never an epoch);
//   - ISO 8601 / RFC 3339: YYYY-MM-DD (a bare date is midnight UTC), or that followed by 'T' or
//     ' ' and hh:mm:ss, an optional fraction of any length (truncated to microseconds), and an
//     optional offset Z, ±hh:mm or ±hhmm; without an offset the time is UTC. The date may use '/'
//     for '-' (YYYY/MM/DD hh:mm:ss, the billing filter format).
//
// Fields must be in range (month 01-12, a day the month has, hh 00-23, mm and ss 00-59, offset
// up to 23:59). Anything else is an error wrapping ErrTimestamp.
func ParseTimestamp(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty string", ErrTimestamp)
	}
	numeric := true
	for k := 0; k < len(s); k++ {
		if c := s[k]; (c < '0' || c > '9') && c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E' {
			numeric = false
			break
		}
	}
	switch {
	case len(s) == 8 && allDigits(s):
		if us, ok := parseDate(s, 0, 4, 6); ok {
			return us, nil
		}
		return 0, fmt.Errorf("%w: %q is not a basic-format date YYYYMMDD (8 digits are never an epoch)", ErrTimestamp, s)
	case len(s) >= 10 && allDigits(s[:4]) && (s[4] == '-' || s[4] == '/'):
		if us, ok := parseISO(s); ok {
			return us, nil
		}
	case numeric:
		return ParseEpoch(s)
	}
	return 0, fmt.Errorf("%w: %q", ErrTimestamp, truncate(s, 64))
}

// num2 reads the two digits at s[i:].
func num2(s string, i int) (int, bool) {
	if i+2 > len(s) || s[i] < '0' || s[i] > '9' || s[i+1] < '0' || s[i+1] > '9' {
		return 0, false
	}
	return int(s[i]-'0')*10 + int(s[i+1]-'0'), true
}

// parseDate reads YYYY at s[y:], MM at s[m:] and DD at s[d:] as midnight UTC in microseconds.
func parseDate(s string, y, m, d int) (int64, bool) {
	hi, ok1 := num2(s, y)
	lo, ok2 := num2(s, y+2)
	month, ok3 := num2(s, m)
	day, ok4 := num2(s, d)
	if !ok1 || !ok2 || !ok3 || !ok4 || month < 1 || month > 12 || day < 1 || day > daysIn(hi*100+lo, month) {
		return 0, false
	}
	return daysFromCivil(hi*100+lo, month, day) * 86400 * 1_000_000, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to the proleptic Gregorian date (Howard
// Hinnant's algorithm), for years 0 to 9999.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// parseISO reads the ISO 8601 forms of ParseTimestamp that start with YYYY-MM-DD.
func parseISO(s string) (int64, bool) {
	sep := s[4]
	if s[7] != sep {
		return 0, false
	}
	us, ok := parseDate(s, 0, 5, 8)
	if !ok || len(s) == 10 {
		return us, ok
	}
	// hh:mm:ss at s[11:19]
	if len(s) < 19 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	hh, ok1 := num2(s, 11)
	mm, ok2 := num2(s, 14)
	ss, ok3 := num2(s, 17)
	if !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 59 {
		return 0, false
	}
	us += int64(hh*3600+mm*60+ss) * 1_000_000
	i := 19
	if i < len(s) && s[i] == '.' {
		j := i + 1
		var f int64
		for ; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
			if j-i <= 6 {
				f = f*10 + int64(s[j]-'0')
			}
		}
		if j == i+1 {
			return 0, false
		}
		for k := j - i - 1; k < 6; k++ {
			f *= 10
		}
		us += f
		i = j
	}
	switch {
	case i == len(s):
		return us, true
	case s[i] == 'Z':
		return us, i+1 == len(s)
	case s[i] == '+' || s[i] == '-':
		oh, ok1 := num2(s, i+1)
		j := i + 3
		if j < len(s) && s[j] == ':' {
			j++
		}
		om, ok2 := num2(s, j)
		if !ok1 || !ok2 || j+2 != len(s) || oh > 23 || om > 59 {
			return 0, false
		}
		off := int64(oh*3600+om*60) * 1_000_000
		if s[i] == '+' {
			return us - off, true
		}
		return us + off, true
	}
	return 0, false
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000}

// ParseDecimal converts decimal text (a JSON number or a numeric string: an optional sign,
// digits with an optional fraction, an optional exponent) to DECIMAL(38,10) exactly; it never
// goes through float64. More than 10 significant fraction digits (0.30000000000000004, what a
// JavaScript backend sends for 0.1+0.2) are rounded half-even to 10 fraction digits; the
// Batcher counts those values (Rounded). A value of 10^28 or more after rounding is an error
// wrapping ErrDecimal.
func ParseDecimal(s string) (decimal128.Num, error) {
	d, _, err := parseDecimal(s)
	return d, err
}

// decScale is the scale of every money column: DECIMAL(38,10).
const decScale = 10

// parseDecimal is ParseDecimal, also reporting whether the value was rounded.
func parseDecimal(s string) (_ decimal128.Num, rounded bool, _ error) {
	bad := func() (decimal128.Num, bool, error) {
		return decimal128.Num{}, false, fmt.Errorf("%w: %q", ErrDecimal, truncate(s, 64))
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
	if intDigits == "" && frac == "" {
		return bad()
	}
	exp := ""
	if i != len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return bad()
		}
		exp = s[i+1:]
		e := exp
		if e != "" && (e[0] == '+' || e[0] == '-') {
			e = e[1:]
		}
		if e == "" || !allDigits(e) {
			return bad()
		}
	}
	intDigits = strings.TrimLeft(intDigits, "0")
	if exp != "" || len(intDigits) > 8 {
		// Exponents and values too wide for the int64 fast path: rare, exact with math/big.
		return slowDecimal(neg, intDigits, frac, exp, bad)
	}
	// The fast path for money: |value| < 10^8, so value * 10^10 (plus a rounding carry) fits int64.
	var v int64
	for k := 0; k < len(intDigits); k++ {
		v = v*10 + int64(intDigits[k]-'0')
	}
	kept := frac
	if len(kept) > decScale {
		kept = frac[:decScale]
	}
	for k := 0; k < decScale; k++ {
		v *= 10
		if k < len(kept) {
			v += int64(kept[k] - '0')
		}
	}
	if len(frac) > decScale {
		rest := frac[decScale:]
		if strings.Trim(rest, "0") != "" {
			rounded = true
			// Half-even: up above one half, or at exactly one half when the kept digit is odd.
			if rest[0] > '5' || (rest[0] == '5' && (strings.Trim(rest[1:], "0") != "" || v%2 == 1)) {
				v++
			}
		}
	}
	if neg {
		v = -v
	}
	return decimal128.FromI64(v), rounded, nil
}

// maxExpLen is the most exponent digits (after leading zeros) read as a number; a longer
// exponent is beyond any value DECIMAL(38,10) can hold or round to other than 0.
const maxExpLen = 9

// slowDecimal computes the value digits × 10^(exp - len(frac)) at scale 10, exactly, rounded half
// even. The work is bounded by the length of the text, whatever the exponent: the magnitude is
// judged from the digit count first (so 1e1000000000 is rejected and 1e-1000000000 is 0,
// rounded), the digits kept are at most 38, and rounding looks only at the digits dropped.
func slowDecimal(neg bool, intDigits, frac, exp string, bad func() (decimal128.Num, bool, error)) (decimal128.Num, bool, error) {
	digits := strings.TrimLeft(intDigits+frac, "0")
	if digits == "" {
		return decimal128.Num{}, false, nil // zero, whatever the exponent
	}
	e := 0
	if exp != "" {
		sign := 1
		switch exp[0] {
		case '-':
			sign, exp = -1, exp[1:]
		case '+':
			exp = exp[1:]
		}
		exp = strings.TrimLeft(exp, "0")
		if len(exp) > maxExpLen {
			if sign > 0 {
				return bad()
			}
			return decimal128.Num{}, true, nil
		}
		n, _ := strconv.Atoi(exp)
		e = sign * n
	}
	// unscaled value = digits × 10^shift, with len(digits) significant digits.
	shift := e - len(frac) + decScale
	width := len(digits) + shift // digits of the unscaled integer part
	if width > 38 {
		return bad()
	}
	if width < 0 { // below 0.1 unscaled: rounds to 0
		return decimal128.Num{}, true, nil
	}
	kept, dropped := digits, ""
	if shift < 0 {
		kept, dropped = digits[:width], digits[width:]
	}
	v := new(big.Int)
	if kept != "" {
		v.SetString(kept, 10)
	}
	if shift > 0 {
		v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(shift)), nil))
	}
	rounded := strings.Trim(dropped, "0") != ""
	// Half-even: up above one half, or at exactly one half when the kept digit is odd.
	if rounded && (dropped[0] > '5' || (dropped[0] == '5' && (strings.Trim(dropped[1:], "0") != "" || v.Bit(0) == 1))) {
		v.Add(v, big.NewInt(1))
	}
	if v.CmpAbs(decLimit) >= 0 {
		return bad()
	}
	if neg {
		v.Neg(v)
	}
	return decimal128.FromBigInt(v), rounded, nil
}

// decLimit is 10^38: the unscaled value of a DECIMAL(38,10) stays below it.
var decLimit = new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
