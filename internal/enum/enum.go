// Package enum names the values of pktengine's small enumerations (ring
// versions, TX methods, backends, link policies...). One table, indexed
// by value, serves both a type's String method and the Parse function
// that reads it from a flag, so the two cannot drift apart.
package enum

import "strconv"

// Names holds an enumeration's names indexed by value; "" marks a value
// without a name, so a table may start above zero.
type Names[T ~uint8 | ~uint16 | ~uint32 | ~int] []string

// Format returns v's name, or typ(v), as fmt's %d would print it, for a
// value the table does not name.
func (n Names[T]) Format(v T, typ string) string {
	if v >= 0 && uint64(v) < uint64(len(n)) && n[v] != "" {
		return n[v]
	}
	return typ + "(" + strconv.FormatInt(int64(v), 10) + ")"
}

// Parse returns the value named s, matched exactly.
func (n Names[T]) Parse(s string) (T, bool) {
	for v, name := range n {
		if name != "" && name == s {
			return T(v), true
		}
	}
	return 0, false
}
