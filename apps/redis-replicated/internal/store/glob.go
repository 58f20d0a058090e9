package store

// globMatch is the glob matcher of KEYS and the SCAN family's MATCH, with
// the semantics of Redis's stringmatchlen (case-sensitive): '*' matches
// any run of bytes, the empty one included; '?' any one byte; "[abc]" one
// of the bytes listed, "[^abc]" one not listed, "[a-z]" one in a range (its
// ends in either order), with '\' quoting the next byte inside a class;
// and "\x" the byte x itself.
//
// Like Redis's it also follows that matcher's corner cases: an unterminated
// class runs to the end of the pattern, a lone trailing '\' matches itself,
// range ends compare as signed chars (as on x86), and patterns nesting more
// than 1000 '*' groups match nothing (Redis's guard against exponential
// patterns).
func globMatch(pattern, str []byte) bool {
	skip := false
	return globMatchAt(pattern, str, &skip, 0)
}

// at returns b[i], or 0 past its end (Redis's strings are NUL-terminated,
// and its matcher reads that terminator in a few places).
func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// globMatchAt matches from the start of p and s. skipLonger is set once a
// '*' has tried every suffix of s and failed: every enclosing '*' would then
// fail too (trying a shorter suffix can only fail the same way), so they
// give up at once instead of exploring exponentially many splits.
func globMatchAt(p, s []byte, skipLonger *bool, nesting int) bool {
	if nesting > 1000 {
		return false
	}
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if globMatchAt(p[1:], s, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s = s[1:]
			}
			*skipLonger = true
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := at(p, 0) == '^'
			if not {
				p = p[1:]
			}
			match := false
			c := s[0]
			for {
				if at(p, 0) == '\\' && len(p) >= 2 {
					p = p[1:]
					if p[0] == c {
						match = true
					}
				} else if at(p, 0) == ']' {
					break
				} else if len(p) == 0 {
					// Unterminated: stop at the end; the p[1:] below is
					// balanced by not consuming anything here.
					p = p[:0:0]
					break
				} else if len(p) >= 3 && p[1] == '-' {
					lo, hi, x := int8(p[0]), int8(p[2]), int8(c)
					if lo > hi {
						lo, hi = hi, lo
					}
					p = p[2:]
					if lo <= x && x <= hi {
						match = true
					}
				} else if p[0] == c {
					match = true
				}
				p = p[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s = s[1:]
			if len(p) == 0 {
				// Redis's pattern pointer steps back onto the class's
				// last byte and then past it: nothing is left either way.
				p = nil
				continue
			}
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		default:
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}
