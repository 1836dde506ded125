package enum

import "testing"

type level int

const (
	low  level = 2
	high level = 3
)

var levelNames = Names[level]{low: "low", high: "high"}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		v    level
		want string
	}{
		{low, "low"},
		{high, "high"},
		{0, "level(0)"}, // below the first name: a hole in the table
		{4, "level(4)"}, // past the table
		{-1, "level(-1)"},
	} {
		if got := levelNames.Format(c.v, "level"); got != c.want {
			t.Errorf("Format(%d) = %q, want %q", int(c.v), got, c.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, v := range []level{low, high} {
		if got, ok := levelNames.Parse(levelNames.Format(v, "level")); !ok || got != v {
			t.Errorf("Parse(Format(%d)) = %d, %v", int(v), int(got), ok)
		}
	}
	for _, s := range []string{"", "LOW", "level(2)", "medium"} {
		if got, ok := levelNames.Parse(s); ok {
			t.Errorf("Parse(%q) = %d, true; want false", s, int(got))
		}
	}
}

func TestUnsigned(t *testing.T) {
	type code uint8
	names := Names[code]{"zero", "one"}
	if got := names.Format(255, "code"); got != "code(255)" {
		t.Errorf("Format(255) = %q", got)
	}
	if got, ok := names.Parse("one"); !ok || got != 1 {
		t.Errorf(`Parse("one") = %d, %v`, got, ok)
	}
}
