package wearables

import (
	"strings"
	"testing"
	"time"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestParseUDI(t *testing.T) {
	full := UDI{GTIN: "09506000134352", Lot: "ABC123", Serial: "XYZ", Expires: date(2020, 12, 31)}
	tests := []struct {
		name, in string
		want     UDI
		canon    string
	}{
		{"gs1 example", "(01)09506000134352(17)201231(10)ABC123(21)XYZ", full,
			"(01)09506000134352(17)201231(10)ABC123(21)XYZ"},
		{"any order", "(21)XYZ(10)ABC123(17)201231(01)09506000134352", full,
			"(01)09506000134352(17)201231(10)ABC123(21)XYZ"},
		{"gtin only", "(01)09506000134352", UDI{GTIN: "09506000134352"}, "(01)09506000134352"},
		{"gtin check digit 0", "(01)00000000000000", UDI{GTIN: "00000000000000"}, "(01)00000000000000"},
		{"all five", "(01)09506000134352(11)260301(17)290301(10)LOT42(21)WB0001",
			UDI{GTIN: "09506000134352", Produced: date(2026, 3, 1), Expires: date(2029, 3, 1), Lot: "LOT42", Serial: "WB0001"},
			"(01)09506000134352(11)260301(17)290301(10)LOT42(21)WB0001"},
		{"expiry day 00 is end of month", "(01)09506000134352(17)240200",
			UDI{GTIN: "09506000134352", Expires: date(2024, 2, 29), ExpiresMonthOnly: true}, "(01)09506000134352(17)240200"},
		{"expiry day 00 non-leap", "(01)09506000134352(17)250200",
			UDI{GTIN: "09506000134352", Expires: date(2025, 2, 28), ExpiresMonthOnly: true}, "(01)09506000134352(17)250200"},
		{"production day 00", "(01)09506000134352(11)251100",
			UDI{GTIN: "09506000134352", Produced: date(2025, 11, 1), ProducedMonthOnly: true}, "(01)09506000134352(11)251100"},
		{"leap day", "(01)09506000134352(17)280229",
			UDI{GTIN: "09506000134352", Expires: date(2028, 2, 29)}, "(01)09506000134352(17)280229"},
		{"cset82 punctuation and parentheses", `(01)09506000134352(10)a!"%&'()*+,-./:;<=(21)_?>(12`,
			UDI{GTIN: "09506000134352", Lot: `a!"%&'()*+,-./:;<=`, Serial: "_?>(12"}, `(01)09506000134352(10)a!"%&'()*+,-./:;<=(21)_?>(12`},
		{"5 digits in parentheses are data", "(01)09506000134352(21)(12345)",
			UDI{GTIN: "09506000134352", Serial: "(12345)"}, "(01)09506000134352(21)(12345)"},
		{"20-char serial", "(01)09506000134352(21)ABCDEFGHIJ0123456789",
			UDI{GTIN: "09506000134352", Serial: "ABCDEFGHIJ0123456789"}, "(01)09506000134352(21)ABCDEFGHIJ0123456789"},
		{"raw with symbology id", "]d2010950600013435217201231" + "10ABC123\x1d21XYZ", full, ""},
		{"raw GS1-128", "]C1010950600013435217201231" + "21XYZ\x1d10ABC123", full, ""},
		{"raw leading GS", "\x1d0109506000134352" + "10ABC123\x1d17201231\x1d21XYZ", full, ""},
		{"raw no prefix", "010950600013435221XYZ", UDI{GTIN: "09506000134352", Serial: "XYZ"}, ""},
		{"raw GS after fixed field", "0109506000134352\x1d21XYZ", UDI{GTIN: "09506000134352", Serial: "XYZ"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUDI(tt.in)
			if err != nil {
				t.Fatalf("ParseUDI: %v", err)
			}
			if !udiEqual(got, tt.want) {
				t.Fatalf("ParseUDI = %#v, want %#v", got, tt.want)
			}
			canon := tt.canon
			if canon == "" {
				canon = tt.want.String()
			}
			if got.String() != canon {
				t.Errorf("String() = %q, want %q", got.String(), canon)
			}
		})
	}
}

func TestParseUDIRefusals(t *testing.T) {
	long := strings.Repeat("A", 21)
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "empty"},
		{"oversize", "(01)09506000134352(21)" + strings.Repeat("A", 300), "longer than 256"},
		{"no gtin", "(21)XYZ", "AI (01) GTIN is missing"},
		{"bad check digit", "(01)09506000134353", "AI (01) GTIN: check digit"},
		{"short gtin", "(01)0950600013435", "AI (01) GTIN: want 14 digits"},
		{"long gtin", "(01)095060001343521", "AI (01) GTIN: want 14 digits"},
		{"gtin letters", "(01)0950600013435X", "AI (01) GTIN: want 14 digits"},
		{"duplicate AI", "(01)09506000134352(21)A(21)B", "AI (21) appears more than once"},
		{"unsupported AI", "(01)09506000134352(99)A", "unsupported AI (99)"},
		{"4-digit AI", "(01)09506000134352(8004)A", "unsupported AI (8004)"},
		{"not starting with AI", "(0A)09506000134352", "want \"(\" AI \")\""},
		{"month 13", "(01)09506000134352(17)201331", "AI (17) expiration date: month"},
		{"month 00", "(01)09506000134352(11)200031", "AI (11) production date: month"},
		{"feb 30", "(01)09506000134352(17)240230", "AI (17) expiration date: day does not exist"},
		{"feb 29 non-leap", "(01)09506000134352(17)250229", "AI (17) expiration date: day does not exist"},
		{"april 31", "(01)09506000134352(11)250431", "AI (11) production date: day does not exist"},
		{"short date", "(01)09506000134352(17)20123", "AI (17) expiration date: want YYMMDD"},
		{"date letters", "(01)09506000134352(17)2012AB", "AI (17) expiration date: want YYMMDD"},
		{"empty lot", "(01)09506000134352(10)", "AI (10) lot: empty"},
		{"long serial", "(01)09506000134352(21)" + long, "AI (21) serial: longer than 20"},
		{"space in serial", "(01)09506000134352(21)AB C", "AI (21) serial: character 3 is not in GS1 character set 82"},
		{"hash in lot", "(01)09506000134352(10)A#", "AI (10) lot: character 2"},
		{"non-ASCII lot", "(01)09506000134352(10)Aé", "AI (10) lot: character 2"},
		{"GS inside HRI", "(01)09506000134352(10)A\x1dB", "AI (10) lot: character 2"},
		{"raw truncated gtin", "01095060001343", "AI (01) wants 14"},
		{"raw unknown AI", "0109506000134352991", "unsupported or malformed AI at field 2"},
		{"raw truncated AI", "01095060001343521", "truncated AI"},
		{"raw trailing GS", "010950600013435221XYZ\x1d", "trailing separator"},
		{"raw double GS", "010950600013435210A\x1d\x1d21XYZ", "unsupported or malformed AI"},
		{"raw AI-like data", "010950600013435221X(10)Y", "AI (21) serial: contains a parenthesised AI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseUDI(tt.in)
			if err == nil {
				t.Fatalf("ParseUDI = %v, want error containing %q", u, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseUDI error = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "XYZ") || strings.Contains(err.Error(), long) {
				t.Errorf("error %q echoes the input", err)
			}
			if u != (UDI{}) {
				t.Errorf("ParseUDI returned %#v with its error, want the zero UDI", u)
			}
		})
	}
}

func TestGS1CheckDigit(t *testing.T) {
	// Examples from the GS1 General Specifications and real trade items.
	for _, gtin := range []string{"09506000134352", "00012345600012", "04006381333931", "95012345678903", "00000000000000"} {
		if got := gs1CheckDigit(gtin[:13]); got != gtin[13] {
			t.Errorf("check digit of %s = %c, want %c", gtin[:13], got, gtin[13])
		}
	}
}

func udiEqual(a, b UDI) bool {
	return a.GTIN == b.GTIN && a.Lot == b.Lot && a.Serial == b.Serial &&
		a.Produced.Equal(b.Produced) && a.ProducedMonthOnly == b.ProducedMonthOnly &&
		a.Expires.Equal(b.Expires) && a.ExpiresMonthOnly == b.ExpiresMonthOnly
}

func FuzzParseUDI(f *testing.F) {
	for _, s := range []string{
		"(01)09506000134352(17)201231(10)ABC123(21)XYZ",
		"(01)09506000134352(11)260301(17)290300(10)LOT42(21)WB0001",
		"(21)((21(10)a)(01)09506000134352",
		"]d2010950600013435217201231" + "10ABC123\x1d21XYZ",
		"\x1d010950600013435221X(1",
		"(01)09506000134352(21)(12345)",
		"(01)0950600013435",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUDI(s)
		if err != nil {
			if u != (UDI{}) {
				t.Fatalf("ParseUDI(%q) returned %#v with error %v", s, u, err)
			}
			return
		}
		canon := u.String()
		u2, err := ParseUDI(canon)
		if err != nil {
			t.Fatalf("ParseUDI(String()) of %q = %q: %v", s, canon, err)
		}
		if !udiEqual(u, u2) {
			t.Fatalf("round trip of %q: %#v, then %#v", s, u, u2)
		}
		if u2.String() != canon {
			t.Fatalf("String() is not stable: %q then %q", canon, u2.String())
		}
	})
}
