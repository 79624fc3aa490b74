package transform

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Every timestamp form source-apis.md documents (§2.6, §7 items 7, 30, 35, 42), and the ISO
// variants around them.
func TestParseTimestamp_DocumentedForms(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1519158286000", "2018-02-20T20:24:46Z"},                     // epoch ms as a number (the usual form)
		{"1546300800000", "2019-01-01T00:00:00Z"},                     // numeric string (opportunity detail)
		{"1534531428", "2018-08-17T18:43:48Z"},                        // 10-digit seconds (lead v2 list example)
		{"999999999", "2001-09-09T01:46:39Z"},                         // 9-digit seconds
		{"99999999999", "5138-11-16T09:46:39Z"},                       // the last value read as seconds
		{"100000000000", "1973-03-03T09:46:40Z"},                      // the first read as milliseconds
		{"1534531428.5", "2018-08-17T18:43:48.5Z"},                    // fractional seconds
		{"1534531428000.5", "2018-08-17T18:43:48.0005Z"},              // fractional milliseconds
		{"1534531428.1234567", "2018-08-17T18:43:48.123456Z"},         // below the microsecond: truncated
		{"0", "1970-01-01T00:00:00Z"},                                 // the epoch itself
		{"2015-08-16T14:47:50-06:00", "2015-08-16T20:47:50Z"},         // billing guide, offset with colon
		{"2015-08-11T10:25:17.474-06:00", "2015-08-11T16:25:17.474Z"}, // fractional seconds and offset
		{"2024-03-15T10:30:00.123Z", "2024-03-15T10:30:00.123Z"},      // Z, milliseconds (charges startDate)
		{"2024-03-15T10:30:00Z", "2024-03-15T10:30:00Z"},
		{"2024-03-15T10:30:00.123456789Z", "2024-03-15T10:30:00.123456Z"},
		{"2024-03-15T10:30:00+0000", "2024-03-15T10:30:00Z"}, // offsets without a colon
		{"2024-03-15T10:30:00+0530", "2024-03-15T05:00:00Z"},
		{"2024-03-15T10:30:00-0600", "2024-03-15T16:30:00Z"},
		{"2024-03-15T10:30:00.5+0530", "2024-03-15T05:00:00.5Z"},
		{"2024-03-15T10:30:00+05:30", "2024-03-15T05:00:00Z"},
		{"2024-03-15T10:30:00-00:00", "2024-03-15T10:30:00Z"},
		{"2024-03-15T10:30:00", "2024-03-15T10:30:00Z"}, // no offset: UTC
		{"2024-03-15 10:30:00", "2024-03-15T10:30:00Z"}, // space separator
		{"2015/08/16 14:47:50", "2015-08-16T14:47:50Z"}, // billing filter yyyy/MM/DD HH:mm:ss
		{"2015-08-16", "2015-08-16T00:00:00Z"},          // bare date: midnight UTC
		{"2024-02-29", "2024-02-29T00:00:00Z"},
		{"20250326", "2025-03-26T00:00:00Z"}, // ISO 8601 basic date, never an epoch
		{"19991231", "1999-12-31T00:00:00Z"},
		{"1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.5Z"}, // before the epoch: floor, not toward zero
	} {
		us, err := ParseTimestamp(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.999999Z07:00"); got != c.want {
			t.Errorf("%s = %s, want %s", c.in, got, c.want)
		}
	}
}

// A number must be a plausible epoch: 0, or 9 to 13 digits. A shorter number is an id, a count or
// a date (8 digits), never a moment in 1970; longer ones are not seconds or milliseconds of any
// date the APIs use.
func TestParseTimestamp_ImplausibleNumbersAreRejected(t *testing.T) {
	for _, in := range []string{
		"1", "42", "1534", "12345678", "99999999", "1234567", // short numbers (8-digit ones must be dates)
		"20250230", "20251301", "00000000", // 8 digits that are no date
		"-1", "-1534531428", "+1534531428", // signs
		"01534531428", "0.5", // leading zeros
		"15345314280000", "1534531428000000", // more than 13 digits
		"1e12", "1.5e12", "1534531428.", ".5", // exponents, empty fractions
	} {
		if us, err := ParseTimestamp(in); err == nil || !errors.Is(err, ErrTimestamp) {
			t.Errorf("%s = %d (%v), want an ErrTimestamp", in, us, err)
		}
	}
	_, err := ParseTimestamp("12345678")
	if err == nil || !strings.Contains(err.Error(), "never an epoch") {
		t.Errorf("8 digits: error %v should say they are never an epoch", err)
	}
	_, err = ParseTimestamp("1234567")
	if err == nil || !strings.Contains(err.Error(), "not a plausible epoch") {
		t.Errorf("short number: error %v should say it is not a plausible epoch", err)
	}
}

func TestParseTimestamp_MalformedISOIsRejected(t *testing.T) {
	for _, in := range []string{
		"", "yesterday", "2015-08-16T14:47", "2015-08-16T14:47:50+24:00", "2015-08-16T14:47:50+0560", "2015-08-16T14:47:50+05",
		"2015-08-16t14:47:50z", "2015-08-16T14:47:50Z ", "2015-08-16T24:00:00Z", "2015-08-16T14:60:00Z", "2015-08-16T14:47:60Z",
		"2015-08-16T14:47:50.Z", "2015-08/16", "2015-02-29", "2015-13-01", "2015-00-10", "2015-01-32", "2015-8-16",
		"2015-08-16T4:47:50Z", "2015-08-16T14:47:50ZZ", "2015-08-16T14:47:50+05:30:00",
	} {
		if us, err := ParseTimestamp(in); err == nil {
			t.Errorf("%q = %d, want an error", in, us)
		}
	}
}

// ParseEpoch shares the plausibility rule; an 8-digit date is ParseTimestamp's alone.
func TestParseEpoch_PlausibleOnly(t *testing.T) {
	if us, err := ParseEpoch("1534531428"); err != nil || us != 1534531428_000000 {
		t.Errorf("seconds: %d, %v", us, err)
	}
	if us, err := ParseEpoch("1534465177000"); err != nil || us != 1534465177000_000 {
		t.Errorf("milliseconds: %d, %v", us, err)
	}
	for _, in := range []string{"20250326", "12345", "-1", "1e12"} {
		if _, err := ParseEpoch(in); err == nil {
			t.Errorf("ParseEpoch(%s) accepted", in)
		}
	}
}

// Money: exact, never via float64; more than 10 fraction digits round half-even.
func TestParseDecimal_RoundsHalfEvenToTenDigits(t *testing.T) {
	for _, c := range []struct {
		in, want string
		rounded  bool
	}{
		{"42.5100000000", "42.5100000000", false}, // the documented money string
		{"0.0000000000", "0.0000000000", false},
		{"10.63", "10.6300000000", false},
		{"0.30000000000000004", "0.3000000000", true}, // 0.1 + 0.2 in JavaScript
		{"0.12345678901234567890", "0.1234567890", true},
		{"0.12345678900000000", "0.1234567890", false}, // only zeros dropped: exact
		{"0.00000000005", "0.0000000000", true},        // half: to even (0)
		{"0.00000000015", "0.0000000002", true},        // half: to even (2)
		{"0.00000000025", "0.0000000002", true},
		{"0.000000000250000001", "0.0000000003", true}, // above half
		{"-0.00000000015", "-0.0000000002", true},      // symmetric
		{"-0.00000000001", "0.0000000000", true},
		{"99999999.99999999995", "100000000.0000000000", true}, // carry on the fast path
		{"123456789012345678.123456789012", "123456789012345678.1234567890", true},
		{"1.23456789012345e-5", "0.0000123457", true}, // exponent, slow path
		{"2.5E-10", "0.0000000002", true},
		{"1e-1000000000", "0.0000000000", true}, // tiny: 0, without computing 10^1000000000
		{"0e999999999999", "0.0000000000", false},
		{"1.5e3", "1500.0000000000", false},
		{"9999999999999999999999999999.99999999994", "9999999999999999999999999999.9999999999", true},
	} {
		d, rounded, err := parseDecimal(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := d.ToString(10); got != c.want || rounded != c.rounded {
			t.Errorf("%s = %s (rounded %v), want %s (rounded %v)", c.in, got, rounded, c.want, c.rounded)
		}
	}
	for _, in := range []string{"1e28", "10000000000000000000000000000", "9999999999999999999999999999.99999999995", "1e1000000000",
		"USD350.00", "$0.00", "", ".", "1e", "1e+", "--1", "1,5", " 1", "0x10"} {
		if d, err := ParseDecimal(in); err == nil || !errors.Is(err, ErrDecimal) {
			t.Errorf("%q = %s (%v), want an ErrDecimal", in, d.ToString(10), err)
		}
	}
}

// The work is bounded by the text, not by the exponent or the digits dropped: a megabyte of
// digits is scanned, never turned into a megabyte-wide integer.
func TestParseDecimal_LongTextIsLinear(t *testing.T) {
	long := "1." + strings.Repeat("3", 2_000_000) + "5e2"
	start := time.Now()
	d, rounded, err := parseDecimal(long)
	if err != nil || d.ToString(10) != "133.3333333333" || !rounded {
		t.Fatalf("%s, %v, %v", d.ToString(10), rounded, err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %s", el)
	}
}
