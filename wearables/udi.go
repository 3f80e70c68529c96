package wearables

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// UDI is a device's Unique Device Identifier in the GS1 system: the
// element string that manufacturers print on labels and encode in
// DataMatrix or GS1-128 barcodes.
//
// Five Application Identifiers (AIs) are understood:
//
//	(01) GTIN-14, the device identifier: 14 digits, the last a GS1 mod-10
//	     check digit; required
//	(11) production date, YYMMDD
//	(17) expiration date, YYMMDD
//	(10) batch or lot number, 1 to 20 characters
//	(21) serial number, 1 to 20 characters
//
// Lot and serial use GS1 AI encodable character set 82 (the printable ASCII
// letters, digits and !"%&'()*+,-./:;<=>?_ ) and must not contain a
// parenthesised run of 2 to 4 digits, which would read as an AI in the
// human-readable form. A day of 00 means "no day" (GS1 General
// Specifications 3.4.2 and 3.4.4): for (17) the product expires at the end
// of that month. Years YY are 2000+YY: UDIs postdate 2000, and a fixed
// century keeps parsing a pure function (GS1's sliding window depends on
// the current date).
type UDI struct {
	// GTIN is the 14-digit Global Trade Item Number, check digit included.
	GTIN string
	// Lot is the batch or lot number, or "".
	Lot string
	// Serial is the serial number, or "".
	Serial string
	// Produced is the production date (midnight UTC), or the zero time.
	// With ProducedMonthOnly it is the first day of the month.
	Produced          time.Time
	ProducedMonthOnly bool
	// Expires is the expiration date (midnight UTC), or the zero time.
	// With ExpiresMonthOnly it is the last day of the month.
	Expires          time.Time
	ExpiresMonthOnly bool
}

const (
	// maxUDILen bounds the input to ParseUDI; the longest UDI of the five
	// AIs is 90 characters in human-readable form.
	maxUDILen = 256
	// maxUDIVar is the GS1 maximum length of AIs (10) and (21).
	maxUDIVar = 20
	gs        = '\x1d'
)

var errUDI = errors.New("malformed UDI")

// ParseUDI parses and validates a GS1 UDI element string, in
// human-readable form with the AIs in parentheses, in any order:
//
//	(01)09506000134352(17)201231(10)ABC123(21)XYZ
//
// or in the raw form that barcode scanners return, where a GS character
// (0x1D, FNC1) ends each variable-length field that is not last, optionally
// preceded by a symbology identifier (]d2, ]C1, ]Q3, ]e0) or a GS:
//
//	]d2010950600013435217201231 10ABC123 <GS> 21XYZ   (without the spaces)
//
// Each AI may appear once; (01) is required. Errors name the AI and the
// reason, never the input.
func ParseUDI(s string) (UDI, error) {
	var u UDI
	if len(s) == 0 {
		return u, fmt.Errorf("%w: empty", errUDI)
	}
	if len(s) > maxUDILen {
		return u, fmt.Errorf("%w: longer than %d bytes", errUDI, maxUDILen)
	}
	var (
		fields []udiField
		err    error
	)
	if s[0] == '(' {
		fields, err = splitHRI(s)
	} else {
		fields, err = splitRaw(s)
	}
	if err != nil {
		return UDI{}, err
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f.ai] {
			return UDI{}, fmt.Errorf("%w: AI (%s) appears more than once", errUDI, f.ai)
		}
		seen[f.ai] = true
		if err := u.set(f.ai, f.data); err != nil {
			return UDI{}, fmt.Errorf("%w: AI (%s) %s", errUDI, f.ai, err)
		}
	}
	if u.GTIN == "" {
		return UDI{}, fmt.Errorf("%w: AI (01) GTIN is missing", errUDI)
	}
	return u, nil
}

// String returns the UDI's canonical human-readable form, AIs in the order
// (01)(11)(17)(10)(21), absent ones left out.
func (u UDI) String() string {
	var b strings.Builder
	b.WriteString("(01)" + u.GTIN)
	if !u.Produced.IsZero() {
		b.WriteString("(11)" + formatGS1Date(u.Produced, u.ProducedMonthOnly))
	}
	if !u.Expires.IsZero() {
		b.WriteString("(17)" + formatGS1Date(u.Expires, u.ExpiresMonthOnly))
	}
	if u.Lot != "" {
		b.WriteString("(10)" + u.Lot)
	}
	if u.Serial != "" {
		b.WriteString("(21)" + u.Serial)
	}
	return b.String()
}

type udiField struct{ ai, data string }

// udiAIs maps the understood AIs to their fixed data length, or 0 for
// variable-length ones.
var udiAIs = map[string]int{"01": 14, "11": 6, "17": 6, "10": 0, "21": 0}

// splitHRI splits the human-readable form: each field is "(" AI ")" and its
// data, which runs to the next parenthesised run of 2 to 4 digits.
func splitHRI(s string) ([]udiField, error) {
	var out []udiField
	for len(s) > 0 {
		n := aiMarker(s)
		if n == 0 {
			return nil, fmt.Errorf("%w: want \"(\" AI \")\" at field %d", errUDI, len(out)+1)
		}
		ai := s[1 : n-1]
		if _, ok := udiAIs[ai]; !ok {
			return nil, fmt.Errorf("%w: unsupported AI (%s)", errUDI, ai)
		}
		s = s[n:]
		end := len(s)
		for i := 0; i < len(s); i++ {
			if s[i] == '(' && aiMarker(s[i:]) > 0 {
				end = i
				break
			}
		}
		out = append(out, udiField{ai, s[:end]})
		s = s[end:]
	}
	return out, nil
}

// aiMarker returns the length of the "(" 2-4 digits ")" that s starts with, or 0.
func aiMarker(s string) int {
	if len(s) < 4 || s[0] != '(' {
		return 0
	}
	for i := 1; i < len(s) && i <= 5; i++ {
		c := s[i]
		if c == ')' && i >= 3 {
			return i + 1
		}
		if c < '0' || c > '9' {
			return 0
		}
	}
	return 0
}

// splitRaw splits the unbracketed form with GS separators.
func splitRaw(s string) ([]udiField, error) {
	for _, id := range []string{"]d2", "]C1", "]Q3", "]e0"} {
		if strings.HasPrefix(s, id) {
			s = s[len(id):]
			break
		}
	}
	s = strings.TrimPrefix(s, string(gs))
	var out []udiField
	for len(s) > 0 {
		if len(s) < 2 {
			return nil, fmt.Errorf("%w: truncated AI", errUDI)
		}
		ai := s[:2]
		n, ok := udiAIs[ai]
		if !ok {
			return nil, fmt.Errorf("%w: unsupported or malformed AI at field %d", errUDI, len(out)+1)
		}
		s = s[2:]
		var data string
		if n > 0 {
			if len(s) < n {
				return nil, fmt.Errorf("%w: AI (%s) wants %d characters", errUDI, ai, n)
			}
			data, s = s[:n], s[n:]
		} else {
			end := strings.IndexByte(s, gs)
			if end < 0 {
				end = len(s)
			}
			data, s = s[:end], s[end:]
		}
		out = append(out, udiField{ai, data})
		if len(s) > 0 && s[0] == gs {
			s = s[1:]
			if len(s) == 0 {
				return nil, fmt.Errorf("%w: trailing separator", errUDI)
			}
		}
	}
	return out, nil
}

func (u *UDI) set(ai, data string) error {
	switch ai {
	case "01":
		if len(data) != 14 || !allDigits(data) {
			return errors.New("GTIN: want 14 digits")
		}
		if gs1CheckDigit(data[:13]) != data[13] {
			return errors.New("GTIN: check digit does not match")
		}
		u.GTIN = data
	case "11":
		t, monthOnly, err := parseGS1Date(data, false)
		if err != nil {
			return fmt.Errorf("production date: %v", err)
		}
		u.Produced, u.ProducedMonthOnly = t, monthOnly
	case "17":
		t, monthOnly, err := parseGS1Date(data, true)
		if err != nil {
			return fmt.Errorf("expiration date: %v", err)
		}
		u.Expires, u.ExpiresMonthOnly = t, monthOnly
	case "10":
		if err := checkCSet82(data); err != nil {
			return fmt.Errorf("lot: %v", err)
		}
		u.Lot = data
	case "21":
		if err := checkCSet82(data); err != nil {
			return fmt.Errorf("serial: %v", err)
		}
		u.Serial = data
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// gs1CheckDigit returns the GS1 mod-10 check digit of digits: weights 3 and
// 1 alternate from the rightmost digit, which has weight 3.
func gs1CheckDigit(digits string) byte {
	sum := 0
	for i := 0; i < len(digits); i++ {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

// parseGS1Date parses YYMMDD. DD = 00 gives the first day of the month, or
// with endOfMonth the last.
func parseGS1Date(s string, endOfMonth bool) (time.Time, bool, error) {
	if len(s) != 6 || !allDigits(s) {
		return time.Time{}, false, errors.New("want YYMMDD")
	}
	yy := int(s[0]-'0')*10 + int(s[1]-'0')
	mm := int(s[2]-'0')*10 + int(s[3]-'0')
	dd := int(s[4]-'0')*10 + int(s[5]-'0')
	if mm < 1 || mm > 12 {
		return time.Time{}, false, errors.New("month must be 01 to 12")
	}
	year, month := 2000+yy, time.Month(mm)
	days := time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if dd == 0 {
		if endOfMonth {
			return time.Date(year, month, days, 0, 0, 0, 0, time.UTC), true, nil
		}
		return time.Date(year, month, 1, 0, 0, 0, 0, time.UTC), true, nil
	}
	if dd > days {
		return time.Time{}, false, errors.New("day does not exist in that month")
	}
	return time.Date(year, month, dd, 0, 0, 0, 0, time.UTC), false, nil
}

func formatGS1Date(t time.Time, monthOnly bool) string {
	t = t.UTC()
	if monthOnly {
		return fmt.Sprintf("%02d%02d00", t.Year()%100, int(t.Month()))
	}
	return fmt.Sprintf("%02d%02d%02d", t.Year()%100, int(t.Month()), t.Day())
}

// checkCSet82 checks a variable-length field: 1 to 20 characters of GS1
// character set 82, without a parenthesised AI-like run of digits.
func checkCSet82(s string) error {
	if len(s) == 0 {
		return errors.New("empty")
	}
	if len(s) > maxUDIVar {
		return fmt.Errorf("longer than %d characters", maxUDIVar)
	}
	for i := 0; i < len(s); i++ {
		if !inCSet82(s[i]) {
			return fmt.Errorf("character %d is not in GS1 character set 82", i+1)
		}
		if aiMarker(s[i:]) > 0 {
			return errors.New("contains a parenthesised AI")
		}
	}
	return nil
}

func inCSet82(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte(`!"%&'()*+,-./:;<=>?_`, c) >= 0
}
